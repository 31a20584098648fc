# Paper Table 7: Swin-S | 20000 iterations | UPerNet |
#   aAcc 58.00 | mIoU 37.57 | params 51.90M | Flops 0.231T
# MMSegmentation version of configs/seg/ade20k/upernet_swin_s_seg_20k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops; `lkca seg train --config` that yaml needs neither.
# Backbone: MMSegmentation's SwinTransformer as Swin-S; no lkca neck.
# Everything as upernet_swin_s_seg_10k.py but the schedule.
_base_ = ["upernet_swin_s_seg_10k.py"]
train_cfg = dict(max_iters=20000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=20000, by_epoch=False),
]
