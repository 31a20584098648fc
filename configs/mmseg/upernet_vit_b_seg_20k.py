# Paper Table 6: ViT-B | 2000 iterations | UPerNet | aAcc 40.90 | mIoU 22.28 | params 0.144G | Flops 0.108T
# Paper Table 6: ViT-B | 4000 iterations | UPerNet | aAcc 47.41 | mIoU 28.08 | params 0.144G | Flops 0.108T
# Paper Table 6: ViT-B | 8000 iterations | UPerNet | aAcc 53.43 | mIoU 31.73 | params 0.144G | Flops 0.108T
# Paper Table 6: ViT-B | 16000 iterations | UPerNet | aAcc 61.55 | mIoU 39.33 | params 0.144G | Flops 0.108T
# MMSegmentation version of configs/seg/ade20k/upernet_vit_b_seg_20k.yaml (docs/mmseg.md); needs
# MMSegmentation + mmcv with compiled ops. `lkca seg train --config` that file needs neither.
# One 20k run; its evaluations every 2k (val_interval) hold the rows at 2k, 4k, 8k and 16k.
_base_ = ["_base_/upernet_b.py", "_base_/ade20k.py", "_base_/schedule.py", "_base_/runtime.py"]
model = dict(backbone=dict(arch="vit_s_seg"))
train_cfg = dict(max_iters=20000, val_interval=2000)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=20000, by_epoch=False),
]
