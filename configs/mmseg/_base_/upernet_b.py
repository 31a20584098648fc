# ViT-B / LKCA-B (paper Table 6): the S backbone factory at MMSegmentation's ViT-B width (embed
# 768, 12 heads, depth 12, MLP 4). Whether the paper ran one schedule per row or read the 2k-16k
# rows off one run is not stated; each row file is one run ending at its own iters.
_base_ = ["upernet.py"]
model = dict(
    backbone=dict(dim=768, num_heads=12),
    neck=dict(in_channels=[768] * 4, out_channels=768),
    decode_head=dict(in_channels=[768] * 4),
    auxiliary_head=dict(in_channels=768),
)
