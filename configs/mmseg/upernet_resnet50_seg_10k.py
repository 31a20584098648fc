# Paper Table 7: ResNet-50 | 10000 iterations | UPerNet |
#   aAcc 58.12 | mIoU 35.35 | params 64.12M | Flops 0.238T
# MMSegmentation version of configs/seg/ade20k/upernet_resnet50_seg_10k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops; `lkca seg train --config` that yaml needs neither.
# Backbone: MMSegmentation's ResNetV1c-50 (its upernet_r50.py); no lkca neck.
_base_ = ["_base_/upernet.py", "_base_/ade20k.py", "_base_/schedule.py", "_base_/runtime.py"]
norm_cfg = dict(type="SyncBN", requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True, type="ResNetV1c", depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2), norm_cfg=norm_cfg, norm_eval=False,
        style="pytorch", contract_dilation=True),
    neck=None,  # the backbone gives strides 4, 8, 16, 32 itself
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024, in_index=2),
)
train_cfg = dict(max_iters=10000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=10000, by_epoch=False),
]
