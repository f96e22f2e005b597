"""FCOS training targets and losses of the CenterMask configs, against the reference's rules written out here
(ref §3.2): locations, regression ranges per level, center sampling radius, the smallest GT winning, the
centerness target and the normalisation of the three losses. The head is the one the zoo config builds, so that
its settings (ranges, radius, loss settings) are checked with the arithmetic."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.structures import InstanceData
from torchvision.ops import sigmoid_focal_loss

from tests.helpers import model_cfg

NUM_CLASSES = 3
IMAGE = 512
# ref §3.2: levels P3..P7, their strides and scale ranges, center sampling radius 1.5 strides
STRIDES = (8, 16, 32, 64, 128)
RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, math.inf))
RADIUS = 1.5
SIZES = [(IMAGE // s, IMAGE // s) for s in STRIDES]
# (x1, y1, x2, y2), label: a small box (P3), a medium one (P4), a large one (P5/P6) and a smaller one with the same
# centre as the large one, where both qualify at P5 and the smaller must win
GTS = [((100., 100., 140., 130.), 0), ((200., 40., 380., 160.), 1), ((20., 180., 480., 500.), 2),
       ((100., 200., 400., 480.), 0)]


@pytest.fixture(scope='module')
def head():
    cfg = model_cfg('centermask', 'centermask_v2-39_fpn_ms-3x_coco.py').bbox_head
    cfg.update(num_classes=NUM_CLASSES, in_channels=32, feat_channels=32, stacked_convs=1)
    return MODELS.build(cfg).train()


def reference_points():
    """ref §3.2 locations: ``stride * i + stride // 2`` on each axis, row by row, per level."""
    return [torch.tensor([[s * ix + s // 2, s * iy + s // 2] for iy in range(h) for ix in range(w)],
                         dtype=torch.float32) for s, (h, w) in zip(STRIDES, SIZES)]


def reference_targets():
    """Per location of every level (in order): ``(label, (l, t, r, b) / stride)``; label ``NUM_CLASSES`` is the
    background. A GT is a candidate for a location when the location lies strictly inside the GT box shrunk to
    ``RADIUS`` strides around its centre and the largest of (l, t, r, b) lies in the level's range; among
    candidates the GT of smallest area wins."""
    rows = []
    for s, (lo, hi), (h, w) in zip(STRIDES, RANGES, SIZES):
        for iy in range(h):
            for ix in range(w):
                x, y = s * ix + s // 2, s * iy + s // 2
                best = None
                for (x1, y1, x2, y2), label in GTS:
                    ltrb = (x - x1, y - y1, x2 - x, y2 - y)
                    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                    inside = (max(cx - RADIUS * s, x1) < x < min(cx + RADIUS * s, x2)
                              and max(cy - RADIUS * s, y1) < y < min(cy + RADIUS * s, y2))
                    area = (x2 - x1) * (y2 - y1)
                    if inside and lo <= max(ltrb) <= hi and (best is None or area < best[0]):
                        best = (area, label, tuple(d / s for d in ltrb))
                rows.append((NUM_CLASSES, (0., 0., 0., 0.)) if best is None else best[1:])
    return rows


def gt_instances():
    return InstanceData(bboxes=torch.tensor([box for box, _ in GTS]), labels=torch.tensor([lbl for _, lbl in GTS]))


def test_locations_are_at_the_stride_centres(head):
    got = head.prior_generator.grid_priors(SIZES, dtype=torch.float32, device='cpu')
    for level, (ours, expected) in enumerate(zip(got, reference_points())):
        assert torch.equal(ours, expected), level


def test_targets_follow_ranges_center_sampling_and_smallest_area(head):
    labels, targets = head.get_targets(reference_points(), [gt_instances()])
    labels, targets = torch.cat(labels), torch.cat(targets)
    expected = reference_targets()
    exp_labels = torch.tensor([lbl for lbl, _ in expected])
    assert torch.equal(labels, exp_labels)
    pos = exp_labels < NUM_CLASSES
    torch.testing.assert_close(targets[pos], torch.tensor([t for _, t in expected])[pos], rtol=0, atol=1e-5)
    # every GT has positives, and the levels used are those of the ranges: small -> P3, medium -> P4, the large
    # pair at P5 (where the smaller of the two wins) and P6
    level = torch.cat([torch.full((h * w, ), i) for i, (h, w) in enumerate(SIZES)])
    used = {(int(lbl), int(lvl)) for lbl, lvl in zip(labels[pos], level[pos])}
    assert {(0, 0), (1, 1), (0, 2), (2, 3)} <= used and (2, 2) not in used


def test_centerness_target_formula(head):
    ltrb = torch.tensor([[1.0, 2.0, 3.0, 4.0], [2.5, 0.5, 2.5, 1.5], [0.2, 3.0, 5.0, 3.0]])
    expected = [math.sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) for l, t, r, b in ltrb.tolist()]
    assert head.centerness_target(ltrb).tolist() == pytest.approx(expected, rel=1e-6)


def test_losses_are_normalised_like_the_reference(head):
    """Focal loss (alpha 0.25, gamma 2) summed over all locations and classes / positives; GIoU on (l, t, r, b) in
    stride units with +1 on intersection and union, weighted by the centerness target, / the sum of those targets;
    centerness BCE summed / positives."""
    gen = torch.Generator().manual_seed(0)
    cls = [torch.randn(1, NUM_CLASSES, h, w, generator=gen) for h, w in SIZES]
    reg = [torch.rand(1, 4, h, w, generator=gen) * 6 + 0.1 for h, w in SIZES]
    ctr = [torch.randn(1, 1, h, w, generator=gen) for h, w in SIZES]
    losses = head.loss_by_feat(cls, reg, ctr, [gt_instances()], [dict(img_shape=(IMAGE, IMAGE))])

    expected = reference_targets()
    labels = torch.tensor([lbl for lbl, _ in expected])
    pos = labels < NUM_CLASSES
    num_pos = int(pos.sum())
    target = torch.tensor([t for _, t in expected], dtype=torch.float64)[pos]
    logits = torch.cat([c.flatten(2)[0].t() for c in cls])
    onehot = F.one_hot(labels, NUM_CLASSES + 1)[:, :NUM_CLASSES].float()
    loss_cls = sigmoid_focal_loss(logits, onehot, alpha=0.25, gamma=2.0, reduction='sum') / num_pos

    pred = torch.cat([r.flatten(2)[0].t() for r in reg]).double()[pos]
    (pl, pt, pr, pb), (tl, tt, tr, tb) = pred.unbind(1), target.unbind(1)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)) * (torch.min(pt, tt) + torch.min(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    enclose = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pt, tt) + torch.max(pb, tb))
    giou = (inter + 1) / (union + 1) - (enclose - union) / enclose
    weight = torch.sqrt(torch.min(tl, tr) / torch.max(tl, tr) * torch.min(tt, tb) / torch.max(tt, tb))
    loss_loc = ((1 - giou) * weight).sum() / weight.sum()

    ctr_logits = torch.cat([c.flatten() for c in ctr])[pos]
    loss_ctr = F.binary_cross_entropy_with_logits(ctr_logits, weight.float(), reduction='sum') / num_pos

    assert num_pos > 20
    assert losses['loss_cls'].item() == pytest.approx(loss_cls.item(), rel=1e-4)
    assert losses['loss_bbox'].item() == pytest.approx(loss_loc.item(), rel=1e-4)
    assert losses['loss_centerness'].item() == pytest.approx(loss_ctr.item(), rel=1e-4)
