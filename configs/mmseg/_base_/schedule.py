# MMSegmentation's ViT recipe (configs/vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py):
# AdamW lr 6e-5, betas (0.9, 0.999), weight decay 0.01, none on pos_embed, norms and biases
# (as lkca seg's seg_param_groups); linear warm-up over 1500 iterations from 1e-6, then poly
# (power 1.0) to 0. Row files set max_iters and the poly end. Same values: configs/seg/ade20k/base.yaml.
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={"pos_embed": dict(decay_mult=0.0)},
                       norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, eta_min=0.0, begin=1500, end=20000, by_epoch=False),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=20000, val_interval=2000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2000),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="SegVisualizationHook"),
)
