"""The classification schedule: linear warm-up, then cosine (paper section 4.1)."""

import math

from lkca.train.optim import warmup_cosine


def test_warmup_then_cosine():
    assert warmup_cosine(0, 10, 100, 0.0) == 0.1
    assert warmup_cosine(9, 10, 100, 0.0) == 1.0
    assert math.isclose(warmup_cosine(55, 10, 100, 0.0), 0.5)
    assert math.isclose(warmup_cosine(100, 10, 100, 0.1), 0.1)
