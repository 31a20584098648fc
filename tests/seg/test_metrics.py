"""Segmentation metrics against hand-computed confusion matrices (MMSegmentation conventions)."""

import math

import pytest
import torch
import torch.distributed as dist

from lkca.seg.metrics import ConfusionMatrix, metrics_from_confusion

IGN = 255


def test_confusion_matrix_by_hand_with_ignore_and_absent_class():
    gt = torch.tensor([[[0, 0, 1], [1, 2, IGN]]])
    pred = torch.tensor([[[0, 1, 1], [1, 2, 3]]])  # the ignored pixel's wrong "3" must not count
    cm = ConfusionMatrix(4)
    cm.update(pred, gt)
    assert cm.matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    m = cm.compute()
    assert m["aAcc"] == pytest.approx(80.0)  # 4 of 5 labelled pixels
    iou = m["per_class_iou"]
    assert iou[:3] == pytest.approx([50.0, 200 / 3, 100.0])  # 1/2, 2/3, 1/1
    assert math.isnan(iou[3])  # absent from ground truth and prediction: left out
    assert m["mIoU"] == pytest.approx((50 + 200 / 3 + 100) / 3)
    assert m["mAcc"] == pytest.approx((50 + 100 + 100) / 3)
    assert m["top10_mIoU"] == pytest.approx(m["mIoU"])


def test_class_predicted_but_absent_from_ground_truth_counts_zero_iou_and_nan_acc():
    cm = torch.tensor([[3, 1, 0], [0, 0, 0], [0, 0, 2]])  # class 1 only predicted
    m = metrics_from_confusion(cm)
    assert m["per_class_iou"] == pytest.approx([75.0, 0.0, 100.0])
    assert m["mIoU"] == pytest.approx(175 / 3)
    assert m["mAcc"] == pytest.approx(87.5)  # (3/4 + 2/2) / 2: class 1's 0/0 is left out
    assert m["aAcc"] == pytest.approx(5 / 6 * 100)


def test_accumulates_over_images_and_takes_logits():
    gt = torch.tensor([[[0, 1], [1, 1]], [[2, 2], [IGN, 0]]])
    labels = torch.tensor([[[0, 1], [0, 1]], [[2, 1], [2, 0]]])
    logits = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()  # (B, K, H, W)
    one, two = ConfusionMatrix(3), ConfusionMatrix(3)
    one.update(logits, gt)
    for i in range(2):
        two.update(labels[i : i + 1], gt[i : i + 1])
    expected = torch.zeros(3, 3, dtype=torch.int64)
    for g, p in zip(gt.flatten().tolist(), labels.flatten().tolist()):
        if g != IGN:
            expected[g, p] += 1
    assert torch.equal(one.matrix, expected) and torch.equal(two.matrix, expected)
    one.reset()
    assert one.matrix.sum() == 0


def test_top10_miou_is_the_mean_of_the_ten_best_classes():
    ious = [0.05 * i for i in range(12)]  # class i: tp / union = ious[i]
    cm = torch.zeros(12, 12, dtype=torch.int64)
    for i, v in enumerate(ious):
        tp = round(v * 100)
        cm[i, i] = tp
        cm[i, (i + 1) % 12] += 100 - tp if i != 11 else 0
    m = metrics_from_confusion(cm)
    best = sorted(m["per_class_iou"], reverse=True)[:10]
    assert m["top10_mIoU"] == pytest.approx(sum(best) / 10)
    assert m["top10_mIoU"] > m["mIoU"]


def test_bad_labels_and_shapes_raise():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="num_classes"):
        cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 3))
    with pytest.raises(ValueError, match="negative"):
        cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), -1))
    with pytest.raises(ValueError, match="differ"):
        cm.update(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    empty = metrics_from_confusion(torch.zeros(3, 3))
    assert all(math.isnan(empty[k]) for k in ("aAcc", "mIoU", "mAcc", "top10_mIoU"))


def test_all_reduce_in_a_process_group(tmp_path):
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[1, 0]]), torch.tensor([[1, 1]]))
    before = cm.matrix.clone()
    assert torch.equal(cm.all_reduce().matrix, before)  # no group: no-op
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert torch.equal(cm.all_reduce().matrix, before)  # one process: the sum is itself
    finally:
        dist.destroy_process_group()
