import math

import torch
from torch import nn

from lkca.train.optim import warmup_cosine


def test_warmup_then_cosine():
    assert warmup_cosine(0, 10, 100, 0.0) == 0.1
    assert warmup_cosine(9, 10, 100, 0.0) == 1.0
    assert math.isclose(warmup_cosine(55, 10, 100, 0.0), 0.5)
    assert math.isclose(warmup_cosine(100, 10, 100, 0.1), 0.1)


def test_adamw_is_fused_on_cpu_and_matches_the_reference_update():
    from lkca.train.optim import adamw

    torch.manual_seed(0)
    ref, fast = nn.Linear(8, 4), nn.Linear(8, 4)
    fast.load_state_dict(ref.state_dict())
    opt_ref = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.05, foreach=False)
    opt_fast = adamw([{"params": list(fast.parameters()), "weight_decay": 0.05}], 1e-2)
    assert opt_fast.defaults["fused"]
    for _ in range(5):
        x = torch.randn(16, 8)
        for model, opt in ((ref, opt_ref), (fast, opt_fast)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(ref.parameters(), fast.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
