# Paper Table 6: LKCA-B | 2000 iterations | UPerNet | aAcc 45.48 | mIoU 24.65 | params 0.102G | Flops 0.115T
# Paper Table 6: LKCA-B | 4000 iterations | UPerNet | aAcc 52.67 | mIoU 30.00 | params 0.102G | Flops 0.115T
# Paper Table 6: LKCA-B | 8000 iterations | UPerNet | aAcc 50.79 | mIoU 33.73 | params 0.102G | Flops 0.115T
# Paper Table 6: LKCA-B | 16000 iterations | UPerNet | aAcc 65.49 | mIoU 40.60 | params 0.102G | Flops 0.115T
# MMSegmentation version of configs/seg/ade20k/upernet_lkca_b_seg_20k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops. `lkca seg train --config` that file needs neither.
# One 20k run; its evaluations every 2k (val_interval) hold the rows at 2k, 4k, 8k and 16k.
_base_ = ["_base_/upernet_b.py", "_base_/ade20k.py", "_base_/schedule.py", "_base_/runtime.py"]
model = dict(backbone=dict(arch="lkca_s_seg"))
train_cfg = dict(max_iters=20000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=20000, by_epoch=False),
]
