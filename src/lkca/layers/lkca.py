"""Large Kernel Convolutional Attention (LKCA), paper section 3.2.

One learned kernel per head replaces the input-dependent attention matrix. Three equivalent ways
to apply it sit side by side below, each a short function over the same arguments:

- :func:`lkca_conv`: depthwise ``F.conv2d`` with zero padding ``k // 2`` (section 3.2.2, the
  convolution view).
- :func:`lkca_toeplitz`: gather the kernel into the N x N "shared weight" attention matrix, then
  one batched matmul with the values (section 3.2.1, the attention view).
- :func:`lkca_fft`: the same convolution computed with zero-padded real FFTs.

All three compute, for the token at (y, x) of head h,
``out[y, x] = sum_{a, b} K_h[a, b] * v[y + a - kh // 2, x + b - kw // 2]`` (zero outside the
grid), i.e. ``F.conv2d``'s cross-correlation. :func:`choose_impl` picks one for ``impl="auto"``:
by default the fastest, timed on the device at hand (docs/benchmarks.md, "How auto chooses").
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from lkca.autotune import tuner
from lkca.errors import InvalidArgumentError
from lkca.layers.input_checks import check_features

IMPLS = ("conv", "toeplitz", "fft", "auto")

Pair = tuple[int, int]


def _is_int(value: object) -> bool:
    """An integer: Python's, numpy's (numbers.Integral) or a traced size (torch.SymInt); not a
    bool, not a float such as 7.0."""
    return isinstance(value, (numbers.Integral, torch.SymInt)) and not isinstance(value, bool)


def _pair(value: int | tuple[int, int], what: str) -> Pair:
    """(value, value) for an int, the pair itself for two ints; anything else (7.0, "7", (7,),
    True) is an :class:`~lkca.errors.InvalidArgumentError` naming ``what``."""
    if _is_int(value):
        return (value, value)  # type: ignore[return-value]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        return (int(value[0]), int(value[1]))
    raise InvalidArgumentError(
        f"LKCA: {what} must be an int or a pair of ints (H, W), got {value!r}"
        + (f"; use {int(value)}" if isinstance(value, float) and value.is_integer() else "")
    )


def global_kernel_size(grid_size: Pair) -> Pair:
    """The kernel that links every token to every other on an H x W grid: (2H - 1, 2W - 1)."""
    return (2 * grid_size[0] - 1, 2 * grid_size[1] - 1)


def crop_kernel(weight: torch.Tensor, grid_size: Pair) -> torch.Tensor:
    """Centre-crop a (heads, kh, kw) kernel to the part a grid can reach, (2H - 1, 2W - 1) at most.

    Offsets beyond +-(H - 1) never pair two tokens of an H-row grid, so the result is unchanged;
    only the work shrinks.
    """
    kh, kw = weight.shape[-2:]
    gh, gw = global_kernel_size(grid_size)
    ch, cw = max(0, (kh - gh) // 2), max(0, (kw - gw) // 2)
    return weight[:, ch : kh - ch, cw : kw - cw] if ch or cw else weight


# --- the three implementations -------------------------------------------------------------------
# Each takes v (B, heads, N, d) with N = H * W in row-major order and weight (heads, kh, kw) with
# odd kh, kw, and returns (B, heads, N, d).


def lkca_conv(v: torch.Tensor, weight: torch.Tensor, grid_size: Pair) -> torch.Tensor:
    """Depthwise convolution of the value map with each head's kernel (zero padding k // 2)."""
    B, heads, N, d = v.shape
    H, W = grid_size
    kh, kw = weight.shape[-2:]
    x = v.transpose(-1, -2).reshape(B, heads * d, H, W)  # (B, C, H, W), channel = head * d + i
    w = weight.repeat_interleave(d, dim=0).unsqueeze(1)  # (C, 1, kh, kw)
    out = F.conv2d(x, w.to(x.dtype), padding=(kh // 2, kw // 2), groups=heads * d)  # (B, C, H, W)
    return out.reshape(B, heads, d, N).transpose(-1, -2)


def toeplitz_matrix(weight: torch.Tensor, grid_size: Pair) -> torch.Tensor:
    """The paper's shared-weight attention matrix: (heads, kh, kw) -> (heads, N, N).

    Row i holds the kernel values at the offset from token i to every token j (a window sliding
    over the kernel); offsets outside the kernel are zero. Built from views: the kernel, zero-padded
    (or cropped) to the global (2H - 1, 2W - 1) and flipped, is unfolded into its H x W windows;
    window (y, x) read backwards is row y * W + x. Its gradient is the unfold's (no scatter).
    """
    heads, kh, kw = weight.shape
    H, W = grid_size
    ph, pw = H - 1 - kh // 2, W - 1 - kw // 2  # to the global kernel; negative crops
    k = F.pad(weight, (pw, pw, ph, ph))  # (heads, 2H - 1, 2W - 1): offset (dy, dx) at (H-1+dy, W-1+dx)
    if torch.compiler.is_compiling() and weight.requires_grad and torch.is_grad_enabled():
        # inductor (torch 2.13, CPU) miscompiles the unfold's gradient, even into heap corruption
        # (pytorch/pytorch#172064 reports its lowering failing on CUDA; tests/layers/
        # test_lkca_compile.py): no unfold while compiling
        return _toeplitz_by_repeat(k, grid_size)
    windows = k.flip(-2, -1).unfold(1, H, 1).unfold(2, W, 1)  # (heads, H, W, H, W)
    return windows.flip(-2, -1).reshape(heads, H * W, H * W)  # (heads, N, N)


def _toeplitz_by_repeat(k: torch.Tensor, grid_size: Pair) -> torch.Tensor:
    """toeplitz_matrix from the global kernel k (heads, 2H - 1, 2W - 1) by roll, repeat, reshape
    and slices (no unfold): the same values, 2-4x slower on CPU, but a gradient inductor compiles."""
    H, W = grid_size
    r = k.roll((1 - H, 1 - W), (1, 2))  # offset (dy, dx) at (dy mod 2H - 1, dx mod 2W - 1)
    rows = _circulant(r, W)  # (heads, 2H - 1, W, W): [dy, x, x'] = r[dy, x' - x]
    t = _circulant(rows.permute(0, 2, 3, 1), H)  # (heads, W, W, H, H): [x, x', y, y']
    return t.permute(0, 3, 1, 4, 2).reshape(k.shape[0], H * W, H * W)  # (heads, N, N)


def _circulant(r: torch.Tensor, n: int) -> torch.Tensor:
    """(..., 2n - 1) -> (..., n, n) with [i, j] = r[(j - i) mod (2n - 1)]: n copies of r laid
    out with a row stride of 2n - 2, which is -1 modulo 2n - 1."""
    if n == 1:
        return r.unsqueeze(-1)
    period = 2 * n - 1
    flat = r.repeat(*([1] * (r.dim() - 1)), n)[..., : n * (period - 1)]
    return flat.reshape(*r.shape[:-1], n, period - 1)[..., :n]


def lkca_toeplitz(v: torch.Tensor, weight: torch.Tensor, grid_size: Pair) -> torch.Tensor:
    """Attention view: (heads, N, N) shared-weight matrix times the values, no softmax.

    With several heads the batch is folded into the columns, so this is one matmul per head with
    B * d columns (large, efficient GEMMs) rather than B * heads small ones; with one head (one
    kernel for every channel) the matrix multiplies the values where they lie.
    """
    B, heads, N, d = v.shape
    attn = toeplitz_matrix(weight, grid_size).to(v.dtype)  # (heads, N, N)
    if heads == 1:  # one kernel for every channel (the authors' LKCA): the same N x N matrix
        # times each image's values, read in place (the folded product below copies the values
        # in and out: 17% slower for LKCA-B's mixer, benchmarks/train_step_speed.py)
        return attn @ v  # (1, N, N) @ (B, 1, N, d) -> (B, 1, N, d)
    x = v.permute(1, 2, 0, 3).reshape(heads, N, B * d)  # (heads, N, B * d)
    out = torch.bmm(attn, x)  # (heads, N, B * d)
    return out.reshape(heads, N, B, d).permute(2, 0, 1, 3)  # (B, heads, N, d)


def fft_size(n: int) -> int:
    """Smallest 2-3-5-smooth length >= n (fast FFT sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _spectrum(x: torch.Tensor, Lh: int, Lw: int) -> torch.Tensor:
    """Real (..., H, W) zero-padded to (Lh, Lw) -> its 2-D spectrum (..., Lh, Lw // 2 + 1).

    Row by row, then column by column: the first pass skips the Lh - H rows that are zero.
    """
    return torch.fft.fft(torch.fft.rfft(x, n=Lw), n=Lh, dim=-2)


def _signal(s: torch.Tensor, H: int, W: int, Lw: int) -> torch.Tensor:
    """Spectrum (..., Lh, Lw // 2 + 1) -> the top-left (H, W) of its real inverse (the rest unused)."""
    return torch.fft.irfft(torch.fft.ifft(s, dim=-2)[..., :H, :], n=Lw)[..., :W]


class _FFTConv(torch.autograd.Function):
    """x (B, heads, d, H, W) with weight (heads, kh, kw) -> (B, heads, d, H, W), by circular FFT.

    The flipped kernel is rolled so its centre sits at index (0, 0): the output is then the top-left
    H x W of the circular convolution. The backward reuses the forward spectra: the input gradient
    is a circular correlation with the same kernel spectrum, the kernel gradient the correlation of
    the output gradient with the input (one small inverse FFT per head), 4 large FFTs in all.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, Lh: int, Lw: int) -> torch.Tensor:
        H, W = x.shape[-2:]
        heads, kh, kw = weight.shape
        k = F.pad(weight.flip(-2, -1), (0, Lw - kw, 0, Lh - kh)).roll((-(kh // 2), -(kw // 2)), (-2, -1))
        fk = torch.fft.rfft2(k).unsqueeze(1)  # (heads, 1, Lh, Lw // 2 + 1)
        fx = _spectrum(x, Lh, Lw)  # (B, heads, d, Lh, Lw // 2 + 1)
        ctx.save_for_backward(fx, fk)
        ctx.sizes = (H, W, kh, kw, Lw)
        return _signal(fx * fk, H, W, Lw)  # (B, heads, d, H, W)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        fx, fk = ctx.saved_tensors
        H, W, kh, kw, Lw = ctx.sizes
        Lh = fx.shape[-2]
        fg = _spectrum(grad, Lh, Lw)  # (B, heads, d, Lh, Lw // 2 + 1)
        grad_x = _signal(fg * fk.conj(), H, W, Lw)  # (B, heads, d, H, W)
        corr = torch.fft.irfft2((fg * fx.conj()).sum((0, 2)), s=(Lh, Lw))  # (heads, Lh, Lw)
        rows = torch.arange(-(kh // 2), kh // 2 + 1, device=grad.device) % Lh  # offsets -> index
        cols = torch.arange(-(kw // 2), kw // 2 + 1, device=grad.device) % Lw
        grad_w = corr[:, rows][:, :, cols].flip(-2, -1)  # (heads, kh, kw)
        return grad_x, grad_w, None, None


def lkca_fft(v: torch.Tensor, weight: torch.Tensor, grid_size: Pair) -> torch.Tensor:
    """The same convolution as a product of zero-padded real 2-D FFTs (computed in fp32 or wider).

    A circular length L >= H + kh // 2 keeps the H output rows free of wrap-around (the kernel
    reaches kh // 2 rows each way), so the FFT can be smaller than the full H + kh - 1.
    """
    B, heads, N, d = v.shape
    H, W = grid_size
    kh, kw = weight.shape[-2:]
    Lh, Lw = fft_size(H + kh // 2), fft_size(W + kw // 2)
    ftype = torch.promote_types(v.dtype, torch.float32)
    x = v.transpose(-1, -2).reshape(B, heads, d, H, W).to(ftype)  # (B, heads, d, H, W)
    out = _FFTConv.apply(x, weight.to(ftype), Lh, Lw)  # (B, heads, d, H, W)
    return out.reshape(B, heads, d, N).transpose(-1, -2).to(v.dtype)


IMPLEMENTATIONS = {"conv": lkca_conv, "toeplitz": lkca_toeplitz, "fft": lkca_fft}


def workspace_bytes(impl: str, batch: int, heads: int, d: int, grid_size: Pair, kernel_size: Pair,
                    itemsize: int, training: bool) -> float:
    """Rough bytes an implementation allocates beyond its input and output (the autotuner skips
    a candidate that would not fit): toeplitz the fp32 (heads, N, N) matrix, its low-precision copy
    and, training, its gradient and the unfold's; fft the complex64 spectra; conv the layout copies.
    """
    (H, W), (kh, kw) = grid_size, kernel_size
    N, C = H * W, heads * d
    if impl == "toeplitz":
        return heads * N * N * (4 * (3 if training else 1) + (itemsize if itemsize != 4 else 0))
    if impl == "fft":
        spectrum = batch * C * fft_size(H + kh // 2) * (fft_size(W + kw // 2) // 2 + 1) * 8
        return spectrum * (3 if training else 2)
    return batch * C * N * itemsize * (3 if training else 2)


def choose_impl(v: torch.Tensor, weight: torch.Tensor, grid_size: Pair) -> str:
    """What ``impl="auto"`` runs for v (B, heads, N, d) and a (cropped) weight (heads, kh, kw).

    The policy's choice (``lkca.set_impl_policy``): by default the fastest of the three, timed
    here the first time this shape key is seen and cached (:mod:`lkca.autotune.tuner`).
    """
    return tuner.choose(v, weight, grid_size, IMPLEMENTATIONS, workspace_bytes)


def output_dtype(v: torch.Tensor) -> torch.dtype:
    """The dtype every implementation returns for values v: under autocast on v's device (and v
    in a floating type autocast lowers: fp32, fp16, bf16) the autocast dtype, as the convolution
    and matmul LKCA stands for return; otherwise v's own dtype. The same for all four impls, so
    ``auto`` never changes a model's dtype between shapes."""
    device = v.device.type
    if not torch.amp.is_autocast_available(device):  # e.g. meta (parameter counts)
        return v.dtype
    if torch.is_autocast_enabled(device) and v.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.get_autocast_dtype(device)
    return v.dtype


def lkca_apply(
    v: torch.Tensor, weight: torch.Tensor, grid_size: Pair, impl: str = "auto"
) -> torch.Tensor:
    """Apply per-head kernels ``weight`` (heads, kh, kw) to values v (B, heads, N, d); the result
    has the dtype of :func:`output_dtype`."""
    weight = crop_kernel(weight, grid_size)
    if impl == "auto":
        impl = choose_impl(v, weight, grid_size)
    return IMPLEMENTATIONS[impl](v, weight, grid_size).to(output_dtype(v))


class LKCA(nn.Module):
    """Large Kernel Convolutional Attention token mixer (paper section 3.2).

    Args:
        dim: token channels C.
        num_heads: heads; each head owns one kernel shared by its C / num_heads channels.
        grid_size: the (H, W) patch grid the module is built for (an int means square).
        kernel_size: odd kernel size (int or pair); default the global kernel (2H - 1, 2W - 1).
        impl: "conv", "toeplitz", "fft" or "auto" (the fastest for the shape, timed on first use:
            docs/benchmarks.md "How auto chooses"); reassignable.
        projections: add the authors' value projection (Linear C -> C, no bias) before the kernel
            and output projection (Linear C -> C with bias) after it (their
            ``models/largevit_cnn.py`` lines 65 and 68-71; ViT-LKCA uses them, docs/models.md).
        proj_drop: dropout on the output (after the output projection when there is one),
            as attention's ``proj_drop``: a model's ``drop_rate`` reaches every mixer.
        value_bias: give the value projection a bias (lkca 0.1.0's projections had one).

    Shapes: ``forward(x)`` with tokens x (B, N, C), N = H * W in row-major order, returns
    (B, N, C); ``forward(x, grid_size=(H2, W2))`` runs the same kernel on another grid. A CNN's
    feature map x (B, C, H, W) is accepted too: its grid is (H, W) and the output is (B, C, H, W)
    (the same numbers as the tokens ``x.flatten(2).transpose(1, 2)``). On a grid larger than the
    one the module was built for the kernel keeps its size, so it no longer links every token
    to every other (it is global only up to the construction grid).

    Output dtype: the input's, or under autocast the autocast dtype (:func:`output_dtype`),
    whichever ``impl`` runs.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid_size: int | tuple[int, int],
        kernel_size: int | tuple[int, int] | None = None,
        impl: str = "auto",
        projections: bool = False,
        proj_drop: float = 0.0,
        value_bias: bool = False,
    ) -> None:
        super().__init__()
        if not (_is_int(dim) and _is_int(num_heads)) or dim <= 0 or num_heads <= 0 or dim % num_heads:
            raise InvalidArgumentError(
                f"LKCA: dim ({dim}) must be a positive multiple of num_heads ({num_heads})"
            )
        self.grid_size = _pair(grid_size, "grid_size")
        if min(self.grid_size) <= 0:
            raise InvalidArgumentError(f"LKCA: grid_size must be positive, got {self.grid_size}")
        limit = global_kernel_size(self.grid_size)
        ksize = limit if kernel_size is None else _pair(kernel_size, "kernel_size")
        if any(k <= 0 or k % 2 == 0 for k in ksize):
            odd = tuple(min(max(1, abs(k) + 1 - abs(k) % 2), lim) for k, lim in zip(ksize, limit))
            raise InvalidArgumentError(
                f"LKCA: kernel_size must be odd and positive, got {ksize}; use an odd size such as "
                f"{odd}"
            )
        if ksize[0] > limit[0] or ksize[1] > limit[1]:
            raise InvalidArgumentError(
                f"LKCA: kernel_size {ksize} is larger than 2 * grid - 1 = {limit} for grid "
                f"{self.grid_size}; use at most {limit} (the global kernel, the default)"
            )
        self.dim, self.num_heads, self.kernel_size = dim, num_heads, ksize
        self.impl = impl
        self.weight = nn.Parameter(torch.empty(num_heads, *ksize))
        self.v_proj = nn.Linear(dim, dim, bias=value_bias) if projections else None
        self.proj = nn.Linear(dim, dim) if projections else None
        if isinstance(proj_drop, bool) or not isinstance(proj_drop, (int, float)) or not 0 <= proj_drop < 1:
            raise InvalidArgumentError(f"LKCA: proj_drop must be a number in [0, 1), got {proj_drop!r}")
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_parameters()

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in IMPLS:
            raise InvalidArgumentError(
                f"LKCA: unknown impl {value!r}; choose one of {', '.join(IMPLS)}")
        self._impl = value

    def reset_parameters(self) -> None:
        # Like attention logits at init: small, so each block starts near the identity residual.
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor, grid_size: int | tuple[int, int] | None = None) -> torch.Tensor:
        check_features(x)
        if x.dim() == 4:  # a CNN's feature map (B, C, H, W)
            return self._forward_map(x, grid_size)
        grid = self.grid_size if grid_size is None else _pair(grid_size, "grid_size")
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise InvalidArgumentError(
                f"LKCA: expected tokens (B, N, {self.dim}) or a feature map (B, {self.dim}, H, W), "
                f"got {tuple(x.shape)}")
        B, N, C = x.shape
        if N != grid[0] * grid[1]:
            raise InvalidArgumentError(
                f"LKCA: {N} tokens do not fill the {grid[0]}x{grid[1]} grid ({grid[0] * grid[1]} "
                "tokens); pass forward(x, grid_size=(H, W)) with H * W == N"
            )
        v = self.v_proj(x) if self.v_proj is not None else x
        v = v.reshape(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, h, N, d)
        out = lkca_apply(v, self.weight, grid, self._impl)  # (B, heads, N, d)
        out = out.transpose(1, 2).reshape(B, N, C)
        if self.proj is not None:
            out = self.proj(out)
        return self.proj_drop(out)

    def _forward_map(self, x: torch.Tensor, grid_size: int | tuple[int, int] | None) -> torch.Tensor:
        """forward for a feature map x (B, C, H, W): the tokens of its H x W grid, mixed, and laid
        out as the map again."""
        B, C, H, W = x.shape
        if C != self.dim:
            raise InvalidArgumentError(
                f"LKCA: expected a feature map (B, {self.dim}, H, W), got {tuple(x.shape)}; a "
                f"channels-last map (B, H, W, C) needs x.permute(0, 3, 1, 2)")
        if grid_size is not None and _pair(grid_size, "grid_size") != (H, W):
            raise InvalidArgumentError(
                f"LKCA: grid_size {grid_size} differs from the feature map's {H}x{W}; a (B, C, H, W) "
                "map carries its grid, so leave grid_size out")
        out = self.forward(x.flatten(2).transpose(1, 2), (H, W))  # (B, N, C)
        return out.transpose(1, 2).reshape(B, C, H, W)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_heads={self.num_heads}, grid_size={self.grid_size}, "
            f"kernel_size={self.kernel_size}, impl={self._impl!r}, "
            f"projections={self.proj is not None}"
        )


__all__ = [
    "LKCA",
    "IMPLS",
    "global_kernel_size",
    "toeplitz_matrix",
    "lkca_conv",
    "lkca_toeplitz",
    "lkca_fft",
    "lkca_apply",
    "output_dtype",
    "choose_impl",
]
