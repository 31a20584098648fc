"""WeightEMA: the average of torch's AveragedModel (EMA, buffers included) without host waits,
its checkpoint layout, and the updates a masked step leaves out."""

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lkca.analysis.step_counts import count_step
from lkca.train.ema import WeightEMA


def _model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model.train()
    return model


def _nudge(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))
        model(torch.randn(5, 4, generator=g))  # moves the BatchNorm's running statistics


def test_same_average_as_averaged_model_and_no_host_wait():
    model = _model()
    ours = WeightEMA(model, 0.9)
    torch_ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    with count_step() as counts:
        for seed in range(4):
            _nudge(model, seed)
            ours.update_parameters(model)
    assert counts.host_waits == 0, counts.host_wait_names
    model2 = _model()  # the same weights, replayed for AveragedModel
    for seed in range(4):
        _nudge(model2, seed)
        torch_ema.update_parameters(model2)
    a, b = ours.state_dict(), torch_ema.state_dict()
    assert a.keys() == b.keys()  # the same checkpoint layout: module.*, n_averaged
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-6)
    assert int(a["n_averaged"]) == int(b["n_averaged"]) == 4
    # an integer buffer is the model's (AveragedModel averages it as a float and truncates)
    assert int(a["module.1.num_batches_tracked"]) == int(model.state_dict()["1.num_batches_tracked"])


def test_a_checkpoint_of_averaged_model_loads():
    model = _model()
    torch_ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    _nudge(model, 1)
    torch_ema.update_parameters(model)
    ours = WeightEMA(_model(), 0.9)
    ours.load_state_dict(torch_ema.state_dict())
    for key, value in torch_ema.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_a_masked_step_changes_neither_the_average_nor_its_count():
    model = _model()
    ema = WeightEMA(model, 0.5)
    _nudge(model, 0)
    ema.update_parameters(model)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    _nudge(model, 1)
    ema.update_parameters(model, torch.tensor(True))
    for key, value in ema.state_dict().items():
        assert torch.equal(value, before[key]), key
    ema.update_parameters(model, torch.tensor(False))
    assert int(ema.n_averaged) == 2
    assert not torch.equal(ema.module[0].weight, before["module.0.weight"])
