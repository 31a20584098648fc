# Paper Table 7: Swin-S | 10000 iterations | UPerNet |
#   aAcc 57.18 | mIoU 35.30 | params 51.90M | Flops 0.231T
# MMSegmentation version of configs/seg/ade20k/upernet_swin_s_seg_10k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops; `lkca seg train --config` that yaml needs neither.
# Backbone: MMSegmentation's SwinTransformer as Swin-S; no lkca neck.
_base_ = ["_base_/upernet.py", "_base_/ade20k.py", "_base_/schedule.py", "_base_/runtime.py"]
norm_cfg = dict(type="SyncBN", requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True, type="SwinTransformer", pretrain_img_size=224, embed_dims=96, patch_size=4,
        window_size=7, mlp_ratio=4, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24],
        strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias=True, qk_scale=None,
        patch_norm=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.3,
        use_abs_pos_embed=False, act_cfg=dict(type="GELU"), norm_cfg=dict(type="LN", requires_grad=True)),
    neck=None,  # the backbone gives strides 4, 8, 16, 32 itself
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384, in_index=2),
)
train_cfg = dict(max_iters=10000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=10000, by_epoch=False),
]
