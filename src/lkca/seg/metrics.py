"""Segmentation metrics from one confusion matrix: aAcc, mIoU, mAcc, per-class IoU and the mean IoU
of the 10 best classes (paper section 4.2), following MMSegmentation's ``IoUMetric``.

The matrix is accumulated on the prediction's device (no per-image host copies) and summed over
processes with ``all_reduce`` when ``torch.distributed`` is initialised.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


class ConfusionMatrix:
    """(num_classes, num_classes) int64 counts; row = ground truth, column = prediction.

    ``update(pred, target)``: ``pred`` (B, H, W) class indices or (B, K, H, W) logits (argmax
    over K), ``target`` (B, H, W) with ``ignore_index`` (255) for unlabelled pixels, which are
    left out of every count. Target values outside [0, num_classes) other than the ignore index
    raise ValueError.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 device: torch.device | str | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be positive, got {num_classes}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(dim=1)  # logits (B, K, H, W) -> (B, H, W)
        if pred.shape != target.shape:
            raise ValueError(f"ConfusionMatrix: prediction {tuple(pred.shape)} and target "
                             f"{tuple(target.shape)} differ; resize the logits to the label size")
        K = self.num_classes
        target = target.to(self.matrix.device, torch.int64)
        pred = pred.to(self.matrix.device, torch.int64)
        keep = target != self.ignore_index
        index = target[keep] * K + pred[keep]  # (n,) flattened (gt, pred) cell
        try:
            counts = torch.bincount(index, minlength=K * K)
        except RuntimeError:  # a negative label
            raise ValueError(f"ConfusionMatrix: a label is negative and not the ignore index "
                             f"{self.ignore_index}; check the label maps") from None
        if counts.numel() != K * K:  # a label >= num_classes pushed the index past K * K
            raise ValueError(f"ConfusionMatrix: a label is >= num_classes ({K}) and is not the "
                             f"ignore index {self.ignore_index}; check the label maps")
        self.matrix += counts.view(K, K)

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the matrix over all processes (no-op unless torch.distributed is initialised)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)
        return self

    def reset(self) -> None:
        self.matrix.zero_()

    def compute(self) -> dict[str, float | list[float]]:
        """:func:`metrics_from_confusion` of this process's matrix (call :meth:`all_reduce` first
        under DDP)."""
        return metrics_from_confusion(self.matrix)


def metrics_from_confusion(cm: torch.Tensor | np.ndarray, top_k: int = 10) -> dict[str, float | list[float]]:
    """Metrics in percent from a (K, K) confusion matrix (row = ground truth, column = prediction).

    Returns ``aAcc`` (correct / labelled pixels), ``per_class_iou`` (K floats: TP / (GT + P - TP)),
    ``mIoU`` (their mean), ``mAcc`` (mean of TP / GT), ``top10_mIoU`` (mean of the ``top_k`` highest
    IoUs). As MMSegmentation: a class absent from both ground truth and prediction has IoU NaN; a
    class absent from the ground truth has accuracy NaN (0/0); NaNs are left out of the means.
    A mean over no class is NaN.
    """
    m = torch.as_tensor(cm).detach().to("cpu", torch.float64).numpy()
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"metrics_from_confusion: expected a square matrix, got shape {m.shape}")
    tp = np.diag(m)
    gt, pred = m.sum(axis=1), m.sum(axis=0)
    union = gt + pred - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan) * 100
        acc = np.where(gt > 0, tp / gt, np.nan) * 100
        a_acc = tp.sum() / m.sum() * 100 if m.sum() > 0 else float("nan")
    present = iou[~np.isnan(iou)]
    top = np.sort(present)[::-1][:top_k]
    return {
        "aAcc": float(a_acc),
        "mIoU": _nanmean(iou),
        "mAcc": _nanmean(acc),
        "per_class_iou": [float(v) for v in iou],
        "top10_mIoU": float(top.mean()) if top.size else float("nan"),
    }


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")
