"""The reference for AutoAugment tests: SPT's PIL calls (aanna0701/SPT_LSA_ViT utils/transforms.py)
and real images to run them on (shared by tests/data/test_autoaugment*.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

GREY = (128, 128, 128)  # SPT's fillcolor


def digits_32() -> np.ndarray:
    """24 of scikit-learn's digits as (24, 32, 32, 3) uint8, the channels made different."""
    from sklearn.datasets import load_digits

    out = []
    for g in load_digits().images[:24]:
        im = Image.fromarray(np.rint(g * 255 / 16).astype(np.uint8)).resize((32, 32), Image.BILINEAR)
        a = np.asarray(im)
        out.append(np.stack([a, a // 2 + 60, 255 - a], -1))  # three different channels
    return np.stack(out).astype(np.uint8)


def photos_64() -> np.ndarray:
    """Four 64 x 64 crops of scikit-learn's two bundled photographs, (4, 64, 64, 3) uint8."""
    from sklearn.datasets import load_sample_images

    out = []
    for photo in load_sample_images().images:  # (427, 640, 3) each
        for top, left in ((100, 200), (250, 400)):
            crop = Image.fromarray(photo[top:top + 128, left:left + 128])
            out.append(np.asarray(crop.resize((64, 64), Image.BICUBIC)))
    return np.stack(out)


def spt_pil(name: str, im: Image.Image, v: float) -> Image.Image:
    """The PIL call of SPT's utils/transforms.py for ``name`` with the value it passes."""
    if name in ("shearX", "shearY"):
        coeffs = (1, v, 0, 0, 1, 0) if name == "shearX" else (1, 0, 0, v, 1, 0)
        return im.transform(im.size, Image.AFFINE, coeffs, Image.BICUBIC, fillcolor=GREY)
    if name in ("translateX", "translateY"):
        coeffs = (1, 0, v, 0, 1, 0) if name == "translateX" else (1, 0, 0, 0, 1, v)
        return im.transform(im.size, Image.AFFINE, coeffs, fillcolor=GREY)
    if name == "rotate":  # transforms.py:52-53
        rot = im.convert("RGBA").rotate(v)
        return Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert(im.mode)
    enhance = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast,
               "sharpness": ImageEnhance.Sharpness, "brightness": ImageEnhance.Brightness}
    if name in enhance:
        return enhance[name](im).enhance(v)
    if name == "posterize":
        return ImageOps.posterize(im, int(v))
    if name == "solarize":
        return ImageOps.solarize(im, v)
    return {"autocontrast": ImageOps.autocontrast, "equalize": ImageOps.equalize,
            "invert": ImageOps.invert}[name](im)
