"""AdamW shared by both tasks: fused, and the same update as torch's reference."""

import torch
from torch import nn

from lkca.runtime.optim import adamw


def test_adamw_is_fused_on_cpu_and_matches_the_reference_update():
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
