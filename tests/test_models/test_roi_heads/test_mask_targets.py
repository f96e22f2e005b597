"""Mask (and MaskIoU) targets in the unclipped RoI, as centermask2 rasterises them (findings D4)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from tests.helpers import load_config

H = W = 100
# the GT: a square truncated by the image border at x = 0, x 0..70, y 10..80
SQUARE = [np.array([0., 10., 70., 10., 70., 80., 0., 80.])]
BORDER_ROI = [-10., 10., 80., 80.]  # starts 10 px left of the image, 90 x 70
INSIDE_ROI = [5., 12., 60., 70.]
TRAIN_CFG = ConfigDict(mask_size=28, mask_thr_binary=0.0)


def heads(clip_target_rois=False):
    cfg = load_config('_base_/models/centermask-lite_vovnet-fpn.py').model.roi_head
    mask_head = MODELS.build(dict(cfg.mask_head, clip_target_rois=clip_target_rois))
    return mask_head, MODELS.build(cfg.mask_iou_head)


def gt(kind):
    if kind == 'polygon':
        masks = PolygonMasks([SQUARE], H, W)
    else:
        bitmap = np.zeros((1, H, W), np.uint8)
        bitmap[0, 10:80, 0:70] = 1
        masks = BitmapMasks(bitmap, H, W)
    return InstanceData(masks=masks, labels=torch.tensor([0]))


def sampling(rois):
    return SimpleNamespace(pos_priors=torch.tensor(rois), pos_assigned_gt_inds=torch.zeros(len(rois), dtype=torch.long))


def rasterise_in_box(box, size=28):
    """Independent rasterisation of SQUARE in ``box``: a target pixel is foreground when its centre, mapped back to
    the image, lies in the square."""
    x1, y1, x2, y2 = box
    centres_x = x1 + (np.arange(size) + 0.5) * (x2 - x1) / size
    centres_y = y1 + (np.arange(size) + 0.5) * (y2 - y1) / size
    inside_x = (centres_x >= 0) & (centres_x < 70)
    inside_y = (centres_y >= 10) & (centres_y < 80)
    return torch.from_numpy((inside_y[:, None] & inside_x[None, :]).astype(np.float32))


def test_polygon_target_is_rasterised_in_the_unclipped_roi():
    mask_head, mask_iou_head = heads()
    res = sampling([BORDER_ROI])
    target = mask_head.get_targets([res], [gt('polygon')], TRAIN_CFG)[0]
    expected = rasterise_in_box(BORDER_ROI)
    assert torch.equal(target, expected)
    # mmdet's clipped RoI (x 0..80) would stretch the square over the left columns
    clipped = FCNMaskHead.get_targets(mask_head, [res], [gt('polygon')], TRAIN_CFG)[0]
    assert torch.equal(clipped, heads(clip_target_rois=True)[0].get_targets([res], [gt('polygon')], TRAIN_CFG)[0])
    assert (clipped != expected).sum() >= 84

    # MaskIoU target from the same target: a prediction of the whole RoI; the GT lies inside the RoI (ratio 1)
    logits = torch.full((1, 28, 28), 5.0)
    iou = mask_iou_head.get_targets([res], [gt('polygon')], logits, target[None], TRAIN_CFG)
    assert iou.item() == pytest.approx(expected.sum().item() / (28 * 28), rel=1e-5)


def test_bitmap_target_is_cropped_in_the_unclipped_roi():
    mask_head, _ = heads()
    res = sampling([BORDER_ROI])
    target = mask_head.get_targets([res], [gt('bitmap')], TRAIN_CFG)[0]
    expected = rasterise_in_box(BORDER_ROI)
    clipped = heads(clip_target_rois=True)[0].get_targets([res], [gt('bitmap')], TRAIN_CFG)[0]
    # RoIAlign on the bitmap replicates the border pixel for samples in (-1, 0): at most one target column differs
    differs = (target != expected).any(dim=0).nonzero().flatten().tolist()
    assert len(differs) <= 1 and all(abs(28 * 10 / 90 - c) < 1.5 for c in differs)
    assert (clipped != expected).sum() >= 84


@pytest.mark.parametrize('kind', ['polygon', 'bitmap'])
def test_targets_of_rois_inside_the_image_are_unchanged(kind):
    mask_head, _ = heads()
    res = sampling([INSIDE_ROI, [20., 15., 69., 79.]])
    ours = mask_head.get_targets([res], [gt(kind)], TRAIN_CFG)
    mmdet = FCNMaskHead.get_targets(mask_head, [res], [gt(kind)], TRAIN_CFG)
    assert torch.equal(ours, mmdet)


def test_no_positive_rois():
    mask_head, _ = heads()
    target = mask_head.get_targets([sampling([])], [gt('polygon')], TRAIN_CFG)
    assert target.shape == (0, 28, 28)


def test_maskiou_area_ratio_as_the_reference():
    """centermask2: pycocotools area of the polygon shifted to the RoI's float origin, in an int(w) x int(h) canvas;
    mmdet: exact area inside the integer box."""
    _, reference_head = heads()
    mmdet_head = MODELS.build(dict(load_config('_base_/models/centermask-lite_vovnet-fpn.py').model.roi_head
                                   .mask_iou_head, area_ratio='mmdet'))
    square = PolygonMasks([[np.array([10., 10., 50., 10., 50., 50., 10., 50.])]], H, W)  # 40 x 40 = 1600
    rois = torch.tensor([[30., 10., 70., 50.],    # right half of the square: 20 x 40 inside
                         [30.7, 10., 70.2, 50.]])  # canvas of int(39.5) = 39 columns from x = 30.7
    inds = torch.zeros(2, dtype=torch.long)
    ref = reference_head._reference_area_ratio(rois, inds, square)
    assert ref[0].item() == pytest.approx(0.5, abs=1e-6)
    assert ref[1].item() == pytest.approx((50 - 30.7) * 40 / 1600, abs=0.5 * 40 / 1600)  # within half a column
    assert mmdet_head._get_area_ratio(rois, inds, square)[1].item() == pytest.approx(0.5, abs=1e-6)  # box 30..70

    # an empty prediction of an empty target: 0 (union clamped at 1), where mmdet gives NaN
    res = SimpleNamespace(pos_priors=rois[:1], pos_assigned_gt_inds=inds[:1])
    gt_instances = InstanceData(masks=square, labels=torch.tensor([0]))
    empty = torch.zeros(1, 28, 28)
    logits = torch.full((1, 28, 28), -5.0)
    assert reference_head.get_targets([res], [gt_instances], logits, empty, TRAIN_CFG).item() == 0
    assert torch.isnan(mmdet_head.get_targets([res], [gt_instances], logits, empty, TRAIN_CFG)).all()


def test_maskiou_area_ratio_choice_is_validated():
    with pytest.raises(ValueError, match=r"one of \('reference', 'mmdet'\)"):
        MODELS.build(dict(type='CenterMaskIoUHead', area_ratio='exact'))


def test_maskiou_area_ratio_canvas_is_int_h_rows_by_int_w_columns():
    """§6: the polygons are rasterised in an ``int(h)`` x ``int(w)`` canvas at the RoI's origin. A flat RoI
    x 0..100, y 20..30.5 over the square 10..50 (1,600 px) holds 40 columns x int(10.5) = 10 rows of it: 0.25;
    and a RoI holding none of it (x 60..100): 0."""
    _, head = heads()
    square = PolygonMasks([[np.array([10., 10., 50., 10., 50., 50., 10., 50.])]], H, W)
    rois = torch.tensor([[0., 20., 100., 30.5], [60., 0., 100., 100.]])
    ratios = head._reference_area_ratio(rois, torch.zeros(2, dtype=torch.long), square)
    assert ratios.tolist() == pytest.approx([0.25, 0.0], abs=1e-6)


def test_targets_of_two_gts_follow_each_rois_assigned_gt():
    """Each positive RoI gets the mask (§4.3) and the area ratio (§6) of the GT it was matched to."""
    mask_head, iou_head = heads()
    masks = PolygonMasks([SQUARE, [np.array([80., 80., 100., 80., 100., 100., 80., 100.])]], H, W)
    gt_instances = InstanceData(masks=masks, labels=torch.tensor([0, 1]))
    rois = [[80., 80., 100., 100.], INSIDE_ROI, [70., 70., 110., 110.]]
    res = SimpleNamespace(pos_priors=torch.tensor(rois), pos_assigned_gt_inds=torch.tensor([1, 0, 1]))
    targets = mask_head.get_targets([res], [gt_instances], TRAIN_CFG)
    assert targets[0].sum() == 28 * 28  # the second GT fills its own box
    assert torch.equal(targets[1], rasterise_in_box(INSIDE_ROI))
    expected = torch.zeros(28, 28)
    expected[7:21, 7:21] = 1  # x, y 80..100 in the 40 px RoI from 70: target pixels 10 * 0.7 .. 30 * 0.7
    assert torch.equal(targets[2], expected)
    ratios = iou_head._reference_area_ratio(res.pos_priors, res.pos_assigned_gt_inds, masks)
    # GT 1 (20 x 20) lies wholly in RoIs 0 and 2; RoI 1 holds x 5..60, y 12..70 of the square (70 x 70)
    assert ratios.tolist() == pytest.approx([1.0, 55 * 58 / 4900, 1.0], abs=1e-6)
