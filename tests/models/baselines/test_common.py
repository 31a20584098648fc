"""The pieces several comparison families share: checks, SPT patch embedding, class token.

(Their drop-path rates and pre-LN block are the ViT's own: tests/layers/test_blocks.py.)"""

import pytest

from lkca.models.baselines import common


def test_checks_name_the_family_and_the_bad_settings():
    common.check_heads("CvT", 12, 3)
    with pytest.raises(ValueError, match=r"^CvT: dim \(10\) must be a multiple of num_heads \(3\)"):
        common.check_heads("CvT", 10, 3)
    cfg = common.SPTViTConfig()
    cfg.dims, cfg.depths, cfg.heads = (8, 16), (1, 1), (1, 2, 4)  # type: ignore[attr-defined]
    common.check_stages("X", cfg, "dims", "depths")
    with pytest.raises(ValueError, match=r"X: dims, depths and heads need one value per stage; "
                                         r"got \(8, 16\), \(1, 1\), \(1, 2, 4\)"):
        common.check_stages("X", cfg, "dims", "depths", "heads")


def test_spt_patch_embed_and_class_token():
    embed = common.spt_patch_embed(common.SPTViTConfig(img_size=32, dim=16))
    assert embed.grid_size == (8, 8)
    assert common.class_token(16).shape == (1, 1, 16)
