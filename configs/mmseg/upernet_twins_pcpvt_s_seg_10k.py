# Paper Table 7: Twins_PCPVT-S | 10000 iterations | UPerNet |
#   aAcc 52.56 | mIoU 29.64 | params 53.30M | Flops 0.234T
# MMSegmentation version of configs/seg/ade20k/upernet_twins_pcpvt_s_seg_10k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops; `lkca seg train --config` that yaml needs neither.
# Backbone: MMSegmentation's PCPVT as Twins-PCPVT-S (its twins_pcpvt-s_*.py); no lkca neck.
_base_ = ["_base_/upernet.py", "_base_/ade20k.py", "_base_/schedule.py", "_base_/runtime.py"]
norm_cfg = dict(type="SyncBN", requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True, type="PCPVT", in_channels=3, embed_dims=[64, 128, 320, 512],
        num_heads=[1, 2, 5, 8], patch_sizes=[4, 2, 2, 2], strides=[4, 2, 2, 2],
        mlp_ratios=[8, 8, 4, 4], out_indices=(0, 1, 2, 3), qkv_bias=True,
        norm_cfg=dict(type="LN"), depths=[3, 4, 6, 3], sr_ratios=[8, 4, 2, 1],
        norm_after_stage=False, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.2),
    neck=None,  # the backbone gives strides 4, 8, 16, 32 itself
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320, in_index=2),
)
train_cfg = dict(max_iters=10000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=10000, by_epoch=False),
]
