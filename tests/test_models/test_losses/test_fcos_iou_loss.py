"""centermask2's FCOS IoU loss (``iou = (I+1)/(U+1)`` on l, t, r, b in stride units; findings D5)."""
import pytest
import torch
from mmdet.models.losses import GIoULoss
from mmdet.registry import MODELS

from tests.helpers import model_cfg


def reference_ious(pred, target):
    """The reference formula, written out on (l, t, r, b) (ref §3.2): ``(iou, giou)`` per box."""
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    target_area = (tl + tr) * (tt + tb)
    pred_area = (pl + pr) * (pt + pb)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)) * (torch.min(pb, tb) + torch.min(pt, tt))
    enclose = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pb, tb) + torch.max(pt, tt))
    union = target_area + pred_area - inter
    ious = (inter + 1.0) / (union + 1.0)
    return ious, ious - (enclose - union) / enclose


def reference_loss(pred, target, weight):
    """GIoU loss weighted and summed (ref §3.2)."""
    return ((1 - reference_ious(pred, target)[1]) * weight).sum()


def to_boxes(points, ltrb):
    return torch.cat([points - ltrb[:, :2], points + ltrb[:, 2:]], dim=1)


# (l, t, r, b) in stride units: ~2-unit boxes (P3 small objects), ~8-unit boxes, a disjoint-ish pair
PRED = torch.tensor([[0.8, 1.2, 1.1, 0.9], [1.0, 1.0, 0.5, 1.5], [4.0, 3.5, 4.2, 4.1], [0.1, 2.0, 3.0, 0.2]])
TARGET = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.2, 0.8, 1.0, 1.0], [4.0, 4.0, 4.0, 4.0], [2.0, 0.1, 0.2, 2.5]])
WEIGHT = torch.tensor([0.9, 0.6, 0.3, 0.5])
POINTS = torch.tensor([[812.0, 604.0], [20.0, 36.0], [1000.0, 8.0], [400.0, 400.0]])


def test_matches_the_reference_formula_and_its_gradient_is_finite():
    loss_fn = MODELS.build(dict(type='FCOSIoULoss', mode='giou'))
    pred = PRED.clone().requires_grad_(True)
    ours = loss_fn(to_boxes(POINTS, pred), to_boxes(POINTS, TARGET), weight=WEIGHT, avg_factor=WEIGHT.sum())
    expected = reference_loss(PRED, TARGET, WEIGHT) / WEIGHT.sum()
    assert ours.item() == pytest.approx(expected.item(), rel=1e-5)
    ours.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    doubled = MODELS.build(dict(type='FCOSIoULoss', mode='giou', loss_weight=2.0))
    assert doubled(to_boxes(POINTS, PRED), to_boxes(POINTS, TARGET), weight=WEIGHT,
                   avg_factor=WEIGHT.sum()).item() == pytest.approx(2 * expected.item(), rel=1e-5)

    # on ~2-stride-unit boxes the +1 smoothing makes it differ from mmdet's GIoU
    small = slice(0, 2)
    mmdet = GIoULoss()(to_boxes(POINTS[small], PRED[small]), to_boxes(POINTS[small], TARGET[small]),
                       weight=WEIGHT[small], avg_factor=WEIGHT[small].sum())
    ours_small = loss_fn(to_boxes(POINTS[small], PRED[small]), to_boxes(POINTS[small], TARGET[small]),
                         weight=WEIGHT[small], avg_factor=WEIGHT[small].sum())
    assert abs(ours_small.item() - mmdet.item()) > 0.01


def test_other_modes_and_bad_mode():
    target = to_boxes(POINTS, TARGET)
    pred = to_boxes(POINTS, PRED)
    linear = MODELS.build(dict(type='FCOSIoULoss', mode='linear_iou'))(pred, target, reduction_override='none')
    log = MODELS.build(dict(type='FCOSIoULoss', mode='iou'))(pred, target, reduction_override='none')
    ious = reference_ious(PRED, TARGET)[0]
    assert torch.allclose(linear, 1 - ious, atol=1e-4) and torch.allclose(log, -torch.log(ious), atol=1e-4)
    with pytest.raises(ValueError, match="one of \\('iou', 'linear_iou', 'giou'\\)"):
        MODELS.build(dict(type='FCOSIoULoss', mode='diou'))


def test_centermask_configs_use_it():
    for config in ('centermask/centermask_v2-39_fpn_ms-3x_coco.py', 'centermask/centermask-lite_v2-19_fpn_ms-4x_coco.py'):
        loss = model_cfg(config).bbox_head.loss_bbox
        assert (loss.type, loss.mode, loss.smooth) == ('FCOSIoULoss', 'giou', 1.0)
