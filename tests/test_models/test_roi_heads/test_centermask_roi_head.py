from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from tests.helpers import load_config


def roi_head_from_config(config='_base_/models/centermask-lite_vovnet-fpn.py'):
    cfg = load_config(config).model
    head = dict(cfg.roi_head)
    head.update(train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn)
    return MODELS.build(head), cfg


def test_maskiou_targets_on_hand_made_masks():
    head, cfg = roi_head_from_config()
    gt = np.zeros((1, 64, 64), np.uint8)
    gt[0, 16:48, 16:48] = 1  # a 32x32 square, area 1024
    gt_instances = InstanceData(masks=BitmapMasks(gt, 64, 64), labels=torch.tensor([0]))
    proposals = torch.tensor([[16., 16., 48., 48.],   # exactly the gt box
                              [32., 16., 64., 48.]])  # right half of the gt (area ratio 0.5)
    sampling = SimpleNamespace(pos_priors=proposals, pos_assigned_gt_inds=torch.tensor([0, 0]))
    mask_targets = torch.zeros(2, 28, 28)
    mask_targets[0] = 1            # the gt fills the first box
    mask_targets[1, :, :14] = 1    # and the left half of the second
    logits = torch.full((2, 28, 28), -3.0)
    logits[0, :, :14] = 3.0        # predicts the left half of box 1: |pred|=392, overlap=392, full=784
    logits[1] = 3.0                # predicts all of box 2: |pred|=784, overlap=392, full=392/0.5=784
    targets = head.mask_iou_head.get_targets([sampling], [gt_instances], logits, mask_targets, cfg.train_cfg.rcnn)
    # IoU = overlap / (|pred| + full - overlap)
    assert targets.tolist() == pytest.approx([392 / (392 + 784 - 392), 392 / (784 + 784 - 392)], rel=1e-5)


def test_maskiou_threshold_is_on_logits_at_zero():
    """The reference binarises logits > 0 (probability > 0.5); mmdet compares logits with mask_thr_binary."""
    _, cfg = roi_head_from_config()
    assert cfg.train_cfg.rcnn.mask_thr_binary == 0.0


def test_mask_scores_multiply_box_scores_by_predicted_iou():
    head, _ = roi_head_from_config()
    head.eval()
    feats = tuple(torch.rand(1, 128, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128))
    results = InstanceData(bboxes=torch.tensor([[10., 10., 60., 70.], [20., 30., 120., 110.]]),
                           scores=torch.tensor([0.9, 0.4]), labels=torch.tensor([3, 7]))
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0))
    sample = SimpleNamespace(metainfo=meta)
    with torch.no_grad():
        mask_preds, iou = head.forward(feats, [results.clone()], [sample])
        out = head.predict(feats, [results.clone()], [sample], rescale=True)[0]
    assert out.masks.shape == (2, 128, 128) and out.masks.dtype == torch.bool
    assert torch.equal(out.scores, results.scores)  # box scores untouched
    expected = results.scores * iou[torch.arange(2), results.labels]
    assert torch.allclose(out.mask_scores, expected)


def test_predict_with_no_boxes():
    head, _ = roi_head_from_config()
    head.eval()
    feats = tuple(torch.rand(1, 128, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128))
    empty = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long))
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0))
    out = head.predict(feats, [empty], [SimpleNamespace(metainfo=meta)], rescale=True)[0]
    assert len(out) == 0 and out.masks.shape[0] == 0 and out.mask_scores.shape == (0, )


def test_bbox_head_is_refused():
    with pytest.raises(ValueError, match='no bbox_head'):
        MODELS.build(dict(type='CenterMaskRoIHead', bbox_head=dict(type='Shared2FCBBoxHead'),
                          mask_roi_extractor=dict(), mask_head=dict()))


def test_mask_branch_pools_unclipped_boxes_and_limits_only_pathological_ones():
    """The reference pools FCOS's unclipped boxes (ref §3.5): a box overshooting the border by a few strides is
    pooled as it is; only inverted boxes and corners beyond one image size past the border are changed."""
    from centermask_mm.models.roi_heads import CenterMaskRoIHead
    metas = [dict(img_shape=(64, 48)), dict(img_shape=(32, 40))]
    rois = torch.tensor([[0., -10., -5., 60., 70.],       # overshoots every border of 48 x 64: unchanged
                         [1., 5., 6., 30., 20.],          # inside: unchanged
                         [0., 30., 40., 10., 20.],        # inverted: x2, y2 raised to x1, y1
                         [1., -1e6, -1e6, 1e6, 1e6]])     # huge: limited to [-w, 2w] x [-h, 2h]
    out = CenterMaskRoIHead.pooling_rois(rois, metas)
    assert torch.equal(out[:2], rois[:2])
    assert out[2].tolist() == [0., 30., 40., 30., 40.]
    assert out[3].tolist() == [1., -40., -32., 80., 64.]
