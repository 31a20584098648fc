"""The 14 AutoAugment operations with PIL's semantics, batched, each with a per-image parameter.

SPT applies AutoAugment to PIL images (aanna0701/SPT_LSA_ViT utils/transforms.py, DeepVoltaire's
AutoAugment); each function here reproduces the PIL call that file makes, on a batch of images at
once, on any device. Images are float32 tensors (B, C, H, W) holding whole numbers 0..255 (the
uint8 levels PIL works on); every function returns the same, rounded the way PIL rounds, so a
chain of operations stays on PIL's grid. ``C`` is 3 (PIL's "RGB") or 1 ("L").

Per image, ``level`` is the operation's parameter as SPT passes it to PIL (a shear factor, a
translation in pixels, an angle in degrees, an enhance factor, a number of bits, a threshold);
the point operations ignore it. docs/recipe.md lists the values; tests/data/test_autoaugment_ops.py
compares every operation with PIL's on real images.

What PIL does, as read from Pillow's libImaging (Geometry.c, Filter.c, Blend.c, Convert.c) and
Image.py / ImageOps.py / ImageEnhance.py, and measured by the tests:

- ``Image.transform(AFFINE, (a, b, c, d, e, f))`` samples the input at
  ``(a (x + .5) + b (y + .5) + c, d (x + .5) + e (y + .5) + f)`` for output pixel (x, y); a point
  outside [0, W) x [0, H) takes the fill colour (128 grey in SPT).
- nearest: the pixel containing that point; for a rotation PIL accumulates the coordinates in
  16.16 fixed point, which :func:`rotate` reproduces bit for bit.
- bicubic: a cubic with a = -1 (not the -0.5 of resizing) over 4 x 4 neighbours, edges clamped,
  the result clipped to [0, 255] and truncated.
- ``Image.blend(degenerate, image, f)`` (every ImageEnhance class): ``deg + f (img - deg)`` in
  single precision, clipped and truncated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FILL = 128.0  # SPT's fillcolor=(128, 128, 128) and Rotate's (128,) * 4 composite


def _pixel_centres(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output pixel centres (1, H, W) as float64: x + 0.5 and y + 0.5."""
    H, W = x.shape[-2:]
    ys = torch.arange(H, device=x.device, dtype=torch.float64).view(1, H, 1) + 0.5
    xs = torch.arange(W, device=x.device, dtype=torch.float64).view(1, 1, W) + 0.5
    return xs, ys


def _take(x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Pixels of each image at flat indices ``y * W + x``: flat (B, *S) -> (B, C, *S).

    One ``index_select`` of whole pixels (C values each) from the channels-last batch; much
    faster than a ``gather`` with the index expanded over channels.
    """
    B, C, H, W = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(B * H * W, C)
    offset = (torch.arange(B, device=x.device) * (H * W)).view(B, *([1] * (flat.ndim - 1)))
    out = pixels.index_select(0, (flat + offset).flatten()).view(*flat.shape, C)
    return out.movedim(-1, 1)


def _nearest(x: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
    """Nearest sampling at integer input pixels (B, H, W); outside the image -> FILL."""
    H, W = x.shape[-2:]
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)  # (B, H, W)
    out = _take(x, iy.clamp(0, H - 1) * W + ix.clamp(0, W - 1))
    return torch.where(inside.unsqueeze(1), out, FILL)


def _cubic(v: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """PIL's transform cubic (a = -1) over the first axis of 4 taps v (at -1, 0, 1, 2) at offset d,
    in Geometry.c's order of operations (its ``BICUBIC`` macro), so truncation sees PIL's doubles:
    ``v1 + d (p2 + d (p3 + d p4))`` with p2 = v2 - v0, p3 = 2 (v0 - v1) + v2 - v3,
    p4 = -v0 + v1 - v2 + v3."""
    v0, v1, v2, v3 = v  # contiguous (B, C, H, W) each
    p2 = -v0 + v2
    p3 = 2 * (v0 - v1) + v2 - v3
    p4 = -v0 + v1 - v2 + v3
    return v1 + d * (p2 + d * (p3 + d * p4))


def _bicubic_along(x: torch.Tensor, f: torch.Tensor, dim: int) -> torch.Tensor:
    """PIL's bicubic transform filter where only one coordinate moves: output pixel (y, x) reads
    the input at f (B, H, W) (float64) along ``dim`` (-1: x, -2: y) and at its own pixel centre
    along the other axis; outside [0, size) -> FILL.

    A shear moves one coordinate only and keeps the other on a pixel centre, where PIL's cubic
    along that axis has offset 0 and returns its middle tap unchanged, so the 4 x 4 filter reduces
    to 4 taps. Taps outside the image repeat the edge pixel (Geometry.c's XCLIP / last row), in
    float64 like PIL's doubles.
    """
    B, C, H, W = x.shape
    size = x.shape[dim]
    inside = (f >= 0) & (f < size)
    s = f - 0.5
    start = torch.floor(s)
    d = (s - start).unsqueeze(1)  # (B, 1, H, W)
    taps = (start.long().unsqueeze(-1) + torch.arange(-1, 3, device=x.device)).clamp(0, size - 1)
    rows = torch.arange(H, device=x.device).view(1, H, 1, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W, 1)
    flat = taps * W + cols if dim == -2 else rows * W + taps  # (B, H, W, 4) flat input index
    vals = _take(x, flat).permute(4, 0, 1, 2, 3).double().contiguous()  # (4, B, C, H, W)
    v = _cubic(vals, d)
    v = v.clamp(0, 255).floor().float()
    return torch.where(inside.unsqueeze(1), v, FILL)


def shear_x(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``transform(AFFINE, (1, m, 0, 0, 1, 0), BICUBIC, fillcolor=128)``: x_in = x + m y, about the
    top-left corner (transforms.py:8-15); ``level`` = m with its sign."""
    xs, ys = _pixel_centres(x)
    fx = xs + level.double().view(-1, 1, 1) * ys  # (B, H, W)
    return _bicubic_along(x, fx, -1)


def shear_y(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``transform(AFFINE, (1, 0, 0, m, 1, 0), BICUBIC, fillcolor=128)``: y_in = m x + y
    (transforms.py:18-25)."""
    xs, ys = _pixel_centres(x)
    fy = level.double().view(-1, 1, 1) * xs + ys
    return _bicubic_along(x, fy, -2)


def translate_x(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``transform(AFFINE, (1, 0, t, 0, 1, 0), fillcolor=128)`` (nearest): content moves left by
    t pixels (transforms.py:28-35); ``level`` = t = magnitude * width * sign."""
    xs, ys = _pixel_centres(x)
    ix = torch.floor(xs + level.double().view(-1, 1, 1)).long().expand(-1, x.shape[-2], -1)
    iy = ys.long().expand(x.shape[0], -1, x.shape[-1])
    return _nearest(x, ix, iy)


def translate_y(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``transform(AFFINE, (1, 0, 0, 0, 1, t), fillcolor=128)`` (nearest): content moves up by t
    pixels (transforms.py:38-45); ``level`` = t = magnitude * height * sign."""
    xs, ys = _pixel_centres(x)
    iy = torch.floor(ys + level.double().view(-1, 1, 1)).long().expand(-1, -1, x.shape[-1])
    ix = xs.long().expand(x.shape[0], x.shape[-2], -1)
    return _nearest(x, ix, iy)


def rotate(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``Image.rotate(deg)`` (nearest, about the image centre, counter-clockwise) with the corners
    filled grey by the RGBA composite of transforms.py:48-53; ``level`` = deg.

    PIL builds the inverse matrix ``(cos t, sin t, c, -sin t, cos t, f)`` with t = -deg in radians,
    each entry rounded to 15 decimals, and (c, f) chosen so the centre (W/2, H/2) stays put; the
    nearest transform then walks it in 16.16 fixed point (Geometry.c ``affine_fixed``), which is
    what is computed here, in int64.
    """
    B, _, H, W = x.shape
    t = -torch.deg2rad(level.double())  # (B,)
    cos = torch.round(torch.cos(t) * 1e15) / 1e15
    sin = torch.round(torch.sin(t) * 1e15) / 1e15
    cx, cy = W / 2.0, H / 2.0
    c = cos * -cx + sin * -cy + cx
    f = -sin * -cx + cos * -cy + cy

    def fix(v: torch.Tensor) -> torch.Tensor:
        return torch.floor(v * 65536.0 + 0.5).long().view(B, 1, 1)

    a0, a1, a3, a4 = fix(cos), fix(sin), fix(-sin), fix(cos)
    a2, a5 = fix(c + cos * 0.5 + sin * 0.5), fix(f - sin * 0.5 + cos * 0.5)
    xs = torch.arange(W, device=x.device).view(1, 1, W)
    ys = torch.arange(H, device=x.device).view(1, H, 1)
    ix = (a2 + xs * a0 + ys * a1) >> 16  # arithmetic shift: floor, as C's on int
    iy = (a5 + xs * a3 + ys * a4) >> 16
    return _nearest(x, ix, iy)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert("L")``: (19595 R + 38470 G + 7471 B + 2^15) >> 16 -> (B, 1, H, W);
    an "L" image (C = 1) is its own grey. Every partial sum is a whole number below 2^24, so
    float32 holds it exactly, and the shift is a division by 2^16, exact too."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.split(1, dim=1)
    return torch.floor((r * 19595.0 + g * 38470.0 + b * 7471.0 + 32768.0) / 65536.0)


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``Image.blend(degenerate, x, factor)`` per image: deg + f (x - deg), clipped, truncated."""
    f = factor.float().view(-1, 1, 1, 1)
    return (degenerate + f * (x - degenerate)).clamp(0, 255).floor()


def color(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Color(img).enhance(f)``: blend with the grey image (transforms.py:56-58)."""
    return _blend(_luma(x).expand_as(x), x, level)


def brightness(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Brightness(img).enhance(f)``: blend with black (transforms.py:81-83)."""
    return _blend(torch.zeros_like(x), x, level)


def contrast(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Contrast(img).enhance(f)``: blend with the uniform grey
    ``int(mean(L) + 0.5)`` of the image (transforms.py:71-73)."""
    mean = torch.floor(_luma(x).mean((1, 2, 3), keepdim=True, dtype=torch.float64) + 0.5)
    return _blend(mean.float().expand_as(x), x, level)


def sharpness(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Sharpness(img).enhance(f)``: blend with ``filter(SMOOTH)``, the 3 x 3 kernel
    (1 1 1 / 1 5 1 / 1 1 1) / 13 rounded to the nearest level, whose border pixels PIL copies from
    the image unfiltered (transforms.py:76-78)."""
    C = x.shape[1]
    # the whole-number kernel: its sums of levels are exact in float32 whatever the convolution
    # algorithm, so an image's result does not depend on the batch it is in; sum / 13 never lies
    # on a half, so rounding it equals PIL's rounding of its float sum
    kernel = torch.ones(C, 1, 3, 3, device=x.device)
    kernel[:, :, 1, 1] = 5.0
    smooth = torch.floor(F.conv2d(x, kernel, groups=C) / 13.0 + 0.5)  # (B, C, H-2, W-2)
    degenerate = x.clone()
    degenerate[:, :, 1:-1, 1:-1] = smooth.clamp(0, 255)
    return _blend(degenerate, x, level)


def _apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """``x[b, c] -> lut[b, c, x[b, c]]`` for a per-image, per-channel table lut (B, C, 256)."""
    B, C = x.shape[:2]
    return lut.float().gather(2, x.long().reshape(B, C, -1)).view(x.shape)


def posterize(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageOps.posterize(img, bits)``: keep the top ``bits`` bits (transforms.py:61-63)."""
    drop = (8 - level.long()).view(-1, 1, 1, 1)
    return ((x.long() >> drop) << drop).float()


def solarize(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageOps.solarize(img, threshold)``: v < threshold stays, others become 255 - v
    (transforms.py:66-68); a threshold of 256 leaves the image as it is."""
    return torch.where(x < level.double().view(-1, 1, 1, 1), x, 255.0 - x)


def invert(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageOps.invert(img)``: 255 - v (transforms.py:96-98)."""
    return 255.0 - x


def autocontrast(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast(img)`` (cutoff 0), per channel: lo, hi the darkest and lightest
    levels present; if hi > lo, v -> int(v * 255 / (hi - lo) - lo * 255 / (hi - lo)) clipped to
    [0, 255] in double precision (transforms.py:86-88)."""
    B, C = x.shape[:2]
    flat = x.reshape(B, C, -1)
    lo = flat.amin(2, keepdim=True).double()  # (B, C, 1)
    hi = flat.amax(2, keepdim=True).double()
    # a true division, as Python's: torch computes ``255.0 / t`` as 255 * (1 / t), which can
    # differ in the last bit and move a level across an integer
    scale = torch.full_like(hi, 255.0).div((hi - lo).clamp(min=1))
    offset = -lo * scale
    levels = torch.arange(256, device=x.device, dtype=torch.float64).view(1, 1, 256)
    lut = torch.trunc(levels * scale + offset).clamp(0, 255)
    lut = torch.where(hi > lo, lut, levels)  # one level: PIL leaves the channel as it is
    return _apply_lut(x, lut)


def equalize(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``ImageOps.equalize(img)``, per channel, in integers: with the histogram h and
    ``step = (N - h[last level present]) // 255``, level i -> (step // 2 + sum(h[:i])) // step;
    clipped to 255 (``Image.point``); a channel with one level, or step 0, is left as it is
    (transforms.py:91-93)."""
    B, C, H, W = x.shape
    idx = x.long().reshape(B * C, -1)
    hist = idx.new_zeros(B * C, 256).scatter_add_(1, idx, torch.ones_like(idx))  # fixed 256 bins
    top = idx.amax(1, keepdim=True)  # the last level present
    step = (H * W - hist.gather(1, top)) // 255  # (B*C, 1)
    below = torch.cumsum(hist, 1) - hist  # sum(h[:i])
    lut = ((step // 2 + below) // step.clamp(min=1)).clamp(max=255)  # Image.point clips to 8 bits
    keep = (step == 0) | ((hist > 0).sum(1, keepdim=True) <= 1)
    lut = torch.where(keep, torch.arange(256, device=x.device).view(1, 256), lut)
    return _apply_lut(x, lut.view(B, C, 256))


OPERATIONS = {
    "shearX": shear_x, "shearY": shear_y, "translateX": translate_x, "translateY": translate_y,
    "rotate": rotate, "color": color, "posterize": posterize, "solarize": solarize,
    "contrast": contrast, "sharpness": sharpness, "brightness": brightness,
    "autocontrast": autocontrast, "equalize": equalize, "invert": invert,
}  # SPT's names (utils/autoaug.py:187-202), in its order
