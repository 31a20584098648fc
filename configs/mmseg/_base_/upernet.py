# UperNet on the LKCA-S backbone, as `lkca seg` builds it (lkca.create_segmentor(..., "upernet")):
# backbone -> lkca's multi-level neck (bilinear resampling: MMSegmentation's MultiLevelNeck of
# upernet_vit-b16_ln_mln.py; resample="deconv" is the transposed-conv option) -> UPerHead
# (channels 512, pool scales 1, 2, 3, 6) + FCN auxiliary head on the fourth level, stride 32
# (in_index=3 as MMSegmentation's upernet_vit-b16_ln_mln.py; the hierarchical backbones'
# configs set in_index=2, as upernet_r50.py), channels 256, loss weight 0.4. From scratch
# (the paper: no pre-training).
norm_cfg = dict(type="SyncBN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 512),
)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=data_preprocessor,
    backbone=dict(type="LKCAViTBackbone", arch="lkca_s_seg", img_size=512),
    neck=dict(type="LKCAMultiLevelNeck", in_channels=[384] * 4, out_channels=384,
              scales=[4, 2, 1, 0.5], resample="bilinear"),
    decode_head=dict(
        type="UPerHead", in_channels=[384] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
        channels=512, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    auxiliary_head=dict(
        type="FCNHead", in_channels=384, in_index=3, channels=256, num_convs=1,
        concat_input=False, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
