# Semantic FPN on the LKCA-S backbone, as `lkca seg` builds it (lkca.create_segmentor(..., "fpn")):
# backbone -> lkca's multi-level neck (bilinear, MMSegmentation's MultiLevelNeck) -> FPN neck
# (256 channels) -> FPNHead (channels 128), no auxiliary head. From scratch (the paper: no pre-training).
norm_cfg = dict(type="SyncBN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 512),
)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=data_preprocessor,
    backbone=dict(type="LKCAViTBackbone", arch="lkca_s_seg", img_size=512),
    neck=[
        dict(type="LKCAMultiLevelNeck", in_channels=[384] * 4, out_channels=384,
             scales=[4, 2, 1, 0.5], resample="bilinear"),
        dict(type="FPN", in_channels=[384] * 4, out_channels=256, num_outs=4),
    ],
    decode_head=dict(
        type="FPNHead", in_channels=[256] * 4, in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32], channels=128, dropout_ratio=0.1, num_classes=150,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
