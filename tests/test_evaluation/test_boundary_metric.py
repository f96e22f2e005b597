"""CocoBoundaryMetric: Boundary AP against boundaries counted by hand and by an erosion written here, its
sensitivity to a mask edge that mask AP hardly sees, its metric names, and the toy configs' evaluator."""
import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_util

import centermask_mm  # noqa: F401  (registers the metric)
from centermask_mm.evaluation import CocoBoundaryMetric, evaluate_boundary
from mmdet.evaluation.metrics import CocoMetric
from tests.helpers import load_config

COCO_THRS = np.linspace(.5, 0.95, 10)


def erode(mask, pixels):
    """``pixels`` erosions by the 3x3 square, outside the image counted as background (written for the test)."""
    mask = mask.astype(bool)
    h, w = mask.shape
    for _ in range(pixels):
        padded = np.pad(mask, 1)
        mask = np.logical_and.reduce([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
    return mask


def boundary(mask, ratio=0.02):
    """The mask's pixels within d of its contour, d = max(1, round(ratio * image diagonal))."""
    d = max(1, int(round(ratio * np.hypot(*mask.shape))))
    return mask.astype(bool) & ~erode(mask, d)


def iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def rle(mask):
    encoded = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded['counts'] = encoded['counts'].decode()
    return encoded


def square(shape, top, left, size):
    mask = np.zeros(shape, np.uint8)
    mask[top:top + size, left:left + size] = 1
    return mask


def coco_gt(masks_per_image, shape):
    """A COCO ground-truth dict: one image per list of masks, every mask of category 1."""
    images, annotations = [], []
    for img_id, masks in enumerate(masks_per_image, 1):
        images.append(dict(id=img_id, height=shape[0], width=shape[1], file_name=f'{img_id}.png'))
        for mask in masks:
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id, category_id=1, iscrowd=0,
                                    segmentation=rle(mask), area=float(mask.sum()),
                                    bbox=[float(v) for v in mask_util.toBbox(rle(mask))]))
    return dict(images=images, annotations=annotations, categories=[dict(id=1, name='shape')])


def evaluate_metric(tmp_path, gt_masks, pred_masks, metric=('bbox', 'segm', 'boundary'), **kwargs):
    """Run the registered metric on one list of masks per image, each prediction of score 1 - 0.01 * index."""
    shape = gt_masks[0][0].shape
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(coco_gt(gt_masks, shape)))
    cls = kwargs.pop('cls', CocoBoundaryMetric)
    metric = cls(ann_file=str(ann_file), metric=list(metric), **kwargs)
    metric.dataset_meta = dict(classes=('shape', ))
    for img_id, masks in enumerate(pred_masks, 1):
        masks = torch.as_tensor(np.stack(masks)).bool()
        boxes = torch.tensor([[m.nonzero()[:, 1].min(), m.nonzero()[:, 0].min(), m.nonzero()[:, 1].max() + 1,
                               m.nonzero()[:, 0].max() + 1] for m in masks], dtype=torch.float32)
        pred = dict(bboxes=boxes, masks=masks, labels=torch.zeros(len(masks), dtype=torch.long),
                    scores=torch.tensor([1 - 0.01 * i for i in range(len(masks))]))
        metric.process({}, [dict(img_id=img_id, ori_shape=shape, pred_instances=pred)])
    return metric.evaluate(len(pred_masks))


# (a) boundary IoU of hand-made masks

def test_boundary_iou_of_two_squares_offset_by_a_pixel_counted_by_hand():
    """20x20 image: d = round(0.02 * 28.3) = 1, so each 10x10 square's boundary is its outer ring of 36 pixels.
    Shifted down by one pixel the rings share 2 + 2 pixels on the shared rows 5 and 13 and 7 + 7 on the left and
    right columns (rows 6..12): 18 of 36 + 36 - 18 = 54, IoU 1/3; mask IoU 90/110."""
    gt, pred = square((20, 20), 4, 3, 10), square((20, 20), 5, 3, 10)
    assert boundary(gt).sum() == 36 and iou(boundary(gt), boundary(pred)) == pytest.approx(1 / 3)  # the helper
    coco_eval = evaluate_boundary(coco_gt([[gt]], gt.shape), [dict(image_id=1, category_id=1, score=1.,
                                                                    segmentation=rle(pred))],
                                  cat_ids=[1], img_ids=[1], iou_thrs=COCO_THRS)
    np.testing.assert_allclose(coco_eval.ious[(1, 1)], [[1 / 3]])  # min(1/3, 9/11)


@pytest.mark.parametrize('shape, ratio', [((20, 20), 0.02), ((100, 100), 0.02), ((20, 20), 0.1), ((64, 48), 0.05)])
def test_boundary_iou_matches_an_independent_erosion(shape, ratio):
    """d = 1, 3 (round(2.83), not int()), 3, 4; the prediction also covers a patch at the image corner, whose edge
    along the image border is boundary."""
    gt = square(shape, 4, 3, 12)
    pred = square(shape, 6, 4, 12)
    pred[:3, :5] = 1
    expected = min(iou(boundary(gt, ratio), boundary(pred, ratio)), iou(gt, pred))
    coco_eval = evaluate_boundary(coco_gt([[gt]], shape), [dict(image_id=1, category_id=1, score=1.,
                                                                 segmentation=rle(pred))],
                                  cat_ids=[1], img_ids=[1], iou_thrs=COCO_THRS, dilation_ratio=ratio)
    np.testing.assert_allclose(coco_eval.ious[(1, 1)], [[expected]])


def test_metric_ap_counts_the_thresholds_below_the_boundary_iou(tmp_path):
    """One object, one prediction: AP at a threshold is 1 where the matching IoU reaches it and 0 elsewhere, so
    Boundary AP is the share of the ten thresholds at or below min(mask IoU, boundary IoU) computed here, and
    segm AP the share below the mask IoU."""
    gt, pred = square((100, 100), 20, 20, 40), square((100, 100), 21, 20, 40)  # one pixel down, d = 3
    b_iou = min(iou(boundary(gt), boundary(pred)), iou(gt, pred))
    m_iou = iou(gt, pred)
    assert 0.5 < b_iou < 0.75 < m_iou  # 0.714 and 0.951: the two differ
    results = evaluate_metric(tmp_path, [[gt]], [[pred]])
    assert results['coco/boundary_mAP'] == pytest.approx(np.mean(COCO_THRS <= b_iou), abs=1e-3)  # 0.5
    assert (results['coco/boundary_mAP_50'], results['coco/boundary_mAP_75']) == (1.0, 0.0)
    assert results['coco/segm_mAP'] == pytest.approx(np.mean(COCO_THRS <= m_iou), abs=1e-3)  # 1.0


# (b) Boundary AP on a small generated dataset

def shapes_dataset(seed=0, num_images=3, size=96):
    """Per image two or three non-overlapping rectangles and ellipses of 28 to 44 pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for _ in range(num_images):
        masks = []
        for cell in range(rng.integers(2, 4)):
            top, left = (cell // 2) * 48 + 4, (cell % 2) * 48 + 4
            h, w = rng.integers(28, 45, size=2)
            if rng.random() < 0.5:
                mask = np.zeros((size, size), np.uint8)
                mask[top:top + h, left:left + w] = 1
            else:
                cy, cx = top + h / 2, left + w / 2
                mask = (((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 <= 1).astype(np.uint8)
            masks.append(mask)
        images.append(masks)
    return images


def test_perfect_masks_give_boundary_ap_one(tmp_path):
    gts = shapes_dataset()
    results = evaluate_metric(tmp_path, gts, gts)
    assert results['coco/boundary_mAP'] == results['coco/segm_mAP'] == results['coco/bbox_mAP'] == 1.0
    assert results['coco/boundary_mAP_50'] == results['coco/boundary_mAP_75'] == 1.0


def test_boundary_ap_sees_a_one_pixel_shrink_that_mask_ap_hardly_sees(tmp_path):
    """Every mask eroded by one pixel: mask AP loses about a quarter (0.759), Boundary AP nearly all (0.031), the
    3-pixel boundary band moving by a third of its width."""
    gts = shapes_dataset()
    shrunk = [[erode(m, 1).astype(np.uint8) for m in masks] for masks in gts]
    results = evaluate_metric(tmp_path, gts, shrunk)
    segm_drop, boundary_drop = 1 - results['coco/segm_mAP'], 1 - results['coco/boundary_mAP']
    assert segm_drop < 0.3
    assert boundary_drop > 2 * segm_drop + 0.1, results


def test_box_and_mask_ap_stay_mmdets(tmp_path):
    """The subclass leaves bbox and segm to mmdet's CocoMetric: same figures on the same predictions."""
    gts = shapes_dataset(seed=1)
    shrunk = [[erode(m, 1).astype(np.uint8) for m in masks] for masks in gts]
    ours = evaluate_metric(tmp_path, gts, shrunk)
    mmdets = evaluate_metric(tmp_path, gts, shrunk, metric=('bbox', 'segm'), cls=CocoMetric)
    assert {k: v for k, v in ours.items() if 'boundary' not in k} == mmdets
    assert {k for k in ours if 'boundary' in k} == {f'coco/boundary_{item}' for item in
                                                    ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')}


def test_metric_items_select_the_boundary_figures(tmp_path):
    gts = shapes_dataset()
    results = evaluate_metric(tmp_path, gts, gts, metric=('boundary', ), metric_items=['mAP', 'mAP_75'])
    assert results == {'coco/boundary_mAP': 1.0, 'coco/boundary_mAP_75': 1.0}


# (c) metric names

def test_an_unknown_metric_names_the_valid_ones():
    with pytest.raises(KeyError) as error:
        CocoBoundaryMetric(metric=['segm', 'boundry'])
    message = str(error.value)
    for name in ('boundry', 'bbox', 'segm', 'boundary', 'proposal', 'proposal_fast'):
        assert name in message


def test_the_toy_configs_evaluate_boundary_ap():
    cfg = load_config('toy', 'centermask-lite_v2-19-slim-dw_fpn_toy.py')
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator['type'] == 'CocoBoundaryMetric'
        assert list(evaluator['metric']) == ['bbox', 'segm', 'boundary']
