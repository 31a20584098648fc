"""Mixup / CutMix: the mixed images, lam, the decision frequencies and the mixed loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lkca.data.mix import MixConfig, MixedBatch, mix_batch, mixed_cross_entropy
from lkca.errors import ConfigError

B = 16


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    # image i is the constant i + 1 and has label i, so a target names the image it came from
    images = (torch.arange(B, dtype=torch.float32) + 1).view(B, 1, 1, 1).expand(B, 3, 8, 8)
    return images.contiguous(), torch.arange(B)


def test_mixup_is_convex_combination_with_partner() -> None:
    torch.manual_seed(0)
    images, targets = _batch()
    for _ in range(10):
        out = mix_batch(images, targets, MixConfig(mix_prob=1.0, cutmix_prob=0.0))
        assert out.mode == "mixup" and 0.0 <= out.lam <= 1.0
        assert torch.equal(out.targets_a, targets)
        assert sorted(out.targets_b.tolist()) == targets.tolist()  # a permutation
        expected = out.lam * images + (1 - out.lam) * images[out.targets_b]
        torch.testing.assert_close(out.images, expected)


def test_cutmix_pastes_one_box_and_lam_is_the_area_left() -> None:
    torch.manual_seed(1)
    images, targets = _batch()
    for _ in range(20):
        out = mix_batch(images, targets, MixConfig(mix_prob=1.0, cutmix_prob=1.0))
        assert out.mode == "cutmix" and 0.0 <= out.lam <= 1.0
        partner = out.targets_b
        for i in torch.nonzero(partner != targets).flatten().tolist():
            pasted = out.images[i, 0] != images[i, 0]  # (H, W)
            assert torch.all(out.images[i][:, pasted] == images[partner[i]][:, pasted])
            assert out.lam == pytest.approx(1 - pasted.float().mean().item())
            if pasted.any():  # a filled rectangle
                rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
                assert pasted.sum() == len(rows) * len(cols)
                assert rows.max() - rows.min() + 1 == len(rows)
                assert cols.max() - cols.min() + 1 == len(cols)


def test_no_mix_returns_the_batch_unchanged() -> None:
    images, targets = _batch()
    out = mix_batch(images, targets, MixConfig(mix_prob=0.0))
    assert out.mode == "none" and out.lam == 1.0
    assert out.images is images and torch.equal(out.targets_b, targets)


def test_decision_frequencies_follow_the_recipe() -> None:
    torch.manual_seed(2)
    images, targets = _batch()
    modes = [mix_batch(images, targets).mode for _ in range(600)]
    mixed = [m for m in modes if m != "none"]
    assert 0.42 < len(mixed) / len(modes) < 0.58
    assert 0.40 < mixed.count("cutmix") / len(mixed) < 0.60


def test_same_seed_same_mix() -> None:
    images, targets = _batch()
    torch.manual_seed(3)
    a = [mix_batch(images, targets) for _ in range(8)]
    torch.manual_seed(3)
    b = [mix_batch(images, targets) for _ in range(8)]
    for x, y in zip(a, b):
        assert x.mode == y.mode and x.lam == y.lam and torch.equal(x.images, y.images)


def test_mixed_loss_is_the_manual_formula() -> None:
    torch.manual_seed(4)
    logits = torch.randn(B, 10)
    ya, yb = torch.randint(10, (B,)), torch.randint(10, (B,))
    batch = MixedBatch(torch.zeros(B, 3, 8, 8), ya, yb, 0.3, "mixup")
    logp = F.log_softmax(logits, dim=1)

    def smoothed_ce(y: torch.Tensor, s: float = 0.1) -> torch.Tensor:
        return ((1 - s) * -logp.gather(1, y[:, None]).squeeze(1) - s * logp.mean(1)).mean()

    expected = 0.3 * smoothed_ce(ya) + 0.7 * smoothed_ce(yb)
    torch.testing.assert_close(mixed_cross_entropy(logits, batch, smoothing=0.1), expected)
    unmixed = MixedBatch(batch.images, ya, ya, 1.0)
    torch.testing.assert_close(mixed_cross_entropy(logits, unmixed), smoothed_ce(ya))


def test_bad_config_raises() -> None:
    with pytest.raises(ConfigError, match="mix_prob"):
        MixConfig(mix_prob=1.5)
    with pytest.raises(ConfigError, match="mixup_alpha"):
        MixConfig(mixup_alpha=-1.0)
