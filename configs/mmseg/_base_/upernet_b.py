# ViT-B / LKCA-B (paper Table 6): the S backbone factory at MMSegmentation's ViT-B width (embed
# 768, 12 heads, depth 12, MLP 4) and its stochastic depth 0.0 (upernet_vit-b16_ln_mln.py line
# 19). The _20k row files are the default reading (one run, its evaluations every 2k are the
# rows); the 2k-16k files are the per-row reading (docs/segmentation.md section 4).
_base_ = ["upernet.py"]
model = dict(
    backbone=dict(dim=768, num_heads=12, drop_path_rate=0.0),
    neck=dict(in_channels=[768] * 4, out_channels=768),
    decode_head=dict(in_channels=[768] * 4),
    auxiliary_head=dict(in_channels=768),
)
