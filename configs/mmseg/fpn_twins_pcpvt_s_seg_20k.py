# Paper Table 7: Twins_PCPVT-S | 20000 iterations | FPN |
#   aAcc 58.51 | mIoU 36.61 | params 33.43M | Flops 49.74G
# MMSegmentation version of configs/seg/ade20k/fpn_twins_pcpvt_s_seg_20k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops; `lkca seg train --config` that yaml needs neither.
# Backbone: MMSegmentation's PCPVT as Twins-PCPVT-S (its twins_pcpvt-s_*.py); no lkca neck.
# Everything as fpn_twins_pcpvt_s_seg_10k.py but the schedule.
_base_ = ["fpn_twins_pcpvt_s_seg_10k.py"]
train_cfg = dict(max_iters=20000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=20000, by_epoch=False),
]
