# Paper Table 7: LKCA-S | 20000 iterations | UPerNet | aAcc 64.37 | mIoU 40.09 | params 50.58M | Flops 65.94G
# MMSegmentation version of configs/seg/ade20k/upernet_lkca_s_seg_20k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops. `lkca seg train --config` that file needs neither.
_base_ = ["_base_/upernet.py", "_base_/ade20k.py", "_base_/schedule.py", "_base_/runtime.py"]
model = dict(backbone=dict(arch="lkca_s_seg"))
train_cfg = dict(max_iters=20000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=20000, by_epoch=False),
]
