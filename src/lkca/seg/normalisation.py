"""The input normalisation of every segmentor: MMSegmentation's ``SegDataPreProcessor`` values,
ImageNet's RGB mean and std (in 0..255, as the pipeline's images are)."""

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def unit_mean_std() -> tuple[list[float], list[float]]:
    """:data:`MEAN` and :data:`STD` for images scaled to [0, 1], as metadata records store them."""
    return [round(m / 255, 6) for m in MEAN], [round(s / 255, 6) for s in STD]
