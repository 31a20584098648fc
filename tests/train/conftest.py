import pytest

from lkca.train.config import TrainConfig


@pytest.fixture
def tiny_cfg(tmp_path):
    """A seconds-long digits run: 2-block LKCA/attention model, few steps per epoch. LKCA's
    implementation by the fixed rule: tests compare separate runs bit for bit, and autotune's
    timed choice may differ between two runs on a busy machine."""

    def make(**kw):
        values = dict(
            model="vit_lkca_500k", model_args={"depth": 2, "dim": 32, "num_heads": 2,
                                               "mixers": "LA"},
            dataset="digits", epochs=3, warmup_epochs=1, batch_size=32, max_steps_per_epoch=4,
            autoaugment="none", hflip=False, crop_padding=1, drop_path=0.1, mix_prob=0.5,
            erasing_p=0.25, out=str(tmp_path / "run"), progress=False, device="cpu",
            impl_policy="rule",
        )
        values.update(kw)
        return TrainConfig(**values)

    return make
