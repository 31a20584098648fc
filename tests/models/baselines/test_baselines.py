"""Every registered comparison model (paper Tables 4-5): builds at the paper's input, runs
forward and backward, matches the paper's parameter count within +-5% (each is built to the
authors' shape, whose exact count the family tests derive), and trains through the training
engine. Parametrised over the registry, so each new baseline is covered."""

import json
import math

import pytest
import torch

import lkca
from lkca.authors import crossvit, regionvit, rvt, twins, xcit
from lkca.data.mix import MixConfig, mix_batch, mixed_cross_entropy
from lkca.models.registry import is_baseline, paper_figures
from lkca.train import engine
from lkca.train.config import TrainConfig
from lkca.train.optim import build_optimizer

BASELINES = [n for n in lkca.list_models() if is_baseline(n)]
# the smallest registered size of each family (the name's first part): one full engine run each
FAMILIES = sorted({n.split("_")[0]: n for n in sorted(
    BASELINES, key=lambda n: -paper_figures(n)["params"])}.values())


def test_table_4_models_are_registered_with_their_paper_rows():
    rows = {paper_figures(n)["row"]: n for n in BASELINES}
    for row in ("Swin-T", "Swin-S", "CaiT-T", "CaiT-S", "MobileViTv2-T", "MobileViTv2-S",
                "MobileViTv2"):
        assert row in rows, row
    assert lkca.list_models("swin_t*", aliases=True) == ["swin_t", "swin_t_cifar"]
    assert set(BASELINES).isdisjoint(lkca.list_models(baselines=False))
    assert not is_baseline("vit_lkca_1m") and is_baseline("swin_t")


def test_unknown_option_is_rejected_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model option.*valid: .*embed_dim"):
        lkca.create_model("swin_t", embeddim=8)


# Every family is built to the authors' shapes (create_model.py): the first half's counts are
# derived in test_authors_shapes.py, the second half's in each family's own test file.
AUTHORS_SHAPED_A = ["swin_t", "swin_s", "cait_t", "cait_s", "t2t_t", "t2t_s", "t2t_b",
                    "mobilevitv2_t", "mobilevitv2_s", "mobilevitv2_b", "cvt_b", "deepvit_t",
                    "deepvit_s"]


def test_every_registered_size_is_built_to_the_authors_shape():
    renamed = (rvt, xcit, crossvit, regionvit, twins)  # the families of docs/baselines.md's last section
    shaped_b = [n for n in BASELINES if n.startswith(tuple(p for f in renamed for p in f.LAYOUTS))]
    checked = [lkca.models.registry.resolve_name(n) for n in AUTHORS_SHAPED_A] + shaped_b
    assert sorted(checked) == BASELINES


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_trains_a_step_at_its_input_and_matches_paper_params(name):
    """Built as the engine builds it, one AdamW step of the recipe's mixed, label-smoothed loss
    on 4 images of the paper's input size; finite loss and gradients, weights move."""
    paper = paper_figures(name)
    size, classes = paper["img_size"], paper["num_classes"]
    torch.manual_seed(0)
    model = engine.build_model({"model": name, "num_classes": classes, "img_size": size},
                               drop_path=0.1)
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / paper["params"] - 1) <= 0.05, (params, paper["params"])
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.05)
    batch = mix_batch(torch.randn(4, 3, size, size), torch.randint(0, classes, (4,)),
                      MixConfig(mix_prob=1.0))
    logits = model(batch.images)
    assert logits.shape == (4, classes)
    loss = mixed_cross_entropy(logits, batch, 0.1)
    loss.backward()
    assert torch.isfinite(loss)
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    # `lkca train --model NAME` with no data set trains on the 8x8 digits
    digits = engine.build_model({"model": name, "num_classes": 10, "img_size": 8})
    assert digits.eval()(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", FAMILIES)
def test_baseline_family_trains_through_the_engine(name, tmp_path, monkeypatch):
    """``lkca.train.engine.train`` end to end (recipe augmentation, mixing, AdamW step,
    evaluation, checkpoint) for one batch of 8 images of the paper's input size."""
    paper = paper_figures(name)
    size, classes = paper["img_size"], paper["num_classes"]

    def tiny_data(cfg, split, device):  # 8 random uint8 images instead of the digits data
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        images = torch.randint(0, 256, (8, 3, size, size), generator=g, dtype=torch.uint8)
        return images, torch.randint(0, classes, (8,), generator=g), classes

    monkeypatch.setattr(engine, "device_tensors", tiny_data)
    cfg = TrainConfig(model=name, dataset="digits", epochs=1, warmup_epochs=0, batch_size=8,
                      mix_prob=1.0, out=str(tmp_path / "run"), progress=False, device="cpu")
    summary = engine.train(cfg)
    assert summary["model"] == name and summary["params"] > 0 and summary["macs"] > 0
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and math.isfinite(json.loads(rows[0])["train_loss"])


@pytest.mark.parametrize("name", lkca.list_models())
def test_every_model_refuses_images_it_cannot_take_in_one_line(name):
    """A uint8 image (once ``mat1 and mat2 must have the same dtype``) or a numpy array (once an
    AttributeError) into any registered model, comparison models and ViTs alike: one
    InvalidArgumentError naming the fix, from the type and dtype alone (so a model built on the
    meta device, which holds no values, gives it too)."""
    import numpy as np

    from lkca.models.registry import _FACTORIES, resolve_name

    try:
        with torch.device("meta"):
            model = _FACTORIES[resolve_name(name)]()
    except NotImplementedError:  # an initialisation that copies data (CrossViT): built for real
        model = _FACTORIES[resolve_name(name)]()
    side = model.cfg.img_size
    side = side if isinstance(side, int) else side[0]
    for x, match in [(torch.zeros(1, 3, side, side, dtype=torch.uint8),
                      r"floating-point images .* got dtype uint8; .*x.float\(\) / 255 - mean"),
                     (np.zeros((1, 3, side, side), np.float32), "numpy ndarray; pass torch.from_numpy")]:
        with pytest.raises(lkca.InvalidArgumentError, match=match) as err:
            model(x)
        assert "\n" not in str(err.value)
