"""PointRend on SAG-Mask (issue 24, item 2): mmdet's MaskPointHead refines the SAG-Mask logits inside CenterMask
(``PointRendCenterMaskRoIHead``): point-sampled training loss, subdivision inference to the configured size."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet.testing import demo_mm_inputs
from mmengine.structures import InstanceData

from centermask_mm.models.roi_heads import PointRendCenterMaskRoIHead
from tests.helpers import load_config, model_cfg

TOY = ('toy', 'centermask-lite_v2-19-slim-dw_fpn_point-rend_toy.py')
ABLATION = ('ablations', 'centermask_v2-39_fpn_point-rend_ms-3x_coco.py')


def toy_model(detects=True, **test_cfg):
    """The toy CenterMask-Lite with PointRend (3 classes, 128-channel FPN), ``test_cfg.rcnn`` updated; ``detects``:
    the FCOS classification bias at 0 so that the untrained model detects boxes (score 0.5 everywhere)."""
    cfg = model_cfg(*TOY)
    cfg.test_cfg.rcnn.update(test_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    if detects:
        with torch.no_grad():
            model.bbox_head.conv_cls.bias.zero_()
    return model


def feats(num_imgs=1, size=96, channels=128):
    return tuple(torch.rand(num_imgs, channels, size // s, size // s) for s in (8, 16, 32, 64, 128))


@pytest.mark.parametrize('config, classes, channels', [(TOY, 3, 128), (ABLATION, 80, 256)], ids=['toy', 'ablation'])
def test_configs_build_the_point_head_from_the_mask_branch(config, classes, channels):
    """The point head takes the class count of the mask head and, as input, the coarse logits of every class plus
    the features of the three pooled levels (P3-P5)."""
    cfg = model_cfg(*config)
    cfg.backbone.init_cfg = None
    head = MODELS.build(cfg).roi_head
    assert type(head) is PointRendCenterMaskRoIHead and type(head.mask_head).__name__ == 'SAGMaskHead'
    point_head = head.point_head
    assert type(point_head).__name__ == 'MaskPointHead'
    assert point_head.num_classes == head.mask_head.num_classes == classes
    assert point_head.in_channels == 3 * channels and point_head.fcs[0].conv.in_channels == 3 * channels + classes
    assert point_head.fc_logits.out_channels == classes
    rcnn = load_config(*config).model.test_cfg.rcnn
    assert 28 * rcnn.scale_factor ** rcnn.subdivision_steps == 112  # the shipped setting: 28 -> 56 -> 112


def test_trains_a_step_with_a_point_loss():
    model = toy_model(detects=False)  # trained on the GT boxes (the sampler adds them) and few FCOS boxes
    model.train()
    calls = []
    model.roi_head.point_head.register_forward_hook(lambda m, args, out: calls.append((args[0].shape, out.shape)))
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128), (3, 128, 96)], num_items=[3, 2],
                            num_classes=3, with_mask=True)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    assert {'loss_mask', 'loss_mask_iou', 'loss_point'} <= set(losses)
    assert torch.isfinite(losses['loss_point']) and losses['loss_point'].item() > 0
    (fine, out), = calls  # one point-head call: train_cfg.num_points (14 x 14) points per positive RoI
    assert fine[1:] == (3 * 128, 14 * 14) and out[1:] == (3, 14 * 14)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    model.zero_grad()
    losses['loss_point'].backward(retain_graph=True)
    point_head = model.roi_head.point_head
    for name, param in [('fcs.0', point_head.fcs[0].conv.weight), ('fc_logits', point_head.fc_logits.weight)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # the point loss reaches the FPN through the fine-grained point features
    assert model.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    total.backward()
    assert model.roi_head.mask_head.conv_logits.weight.grad.abs().sum() > 0


def test_no_positive_roi_gives_a_zero_point_loss():
    head = toy_model().roi_head.train()
    empty = SimpleNamespace(pos_priors=torch.zeros(0, 4), pos_bboxes=torch.zeros(0, 4),
                            pos_gt_labels=torch.zeros(0, dtype=torch.long),
                            pos_assigned_gt_inds=torch.zeros(0, dtype=torch.long))
    gts = [InstanceData(labels=torch.zeros(0, dtype=torch.long), masks=BitmapMasks(np.zeros((0, 96, 96)), 96, 96))]
    losses = head.mask_loss(feats(), [empty], gts, [dict(img_shape=(96, 96))])
    assert losses['loss_point'].item() == 0


@pytest.mark.parametrize('steps, size', [(1, 56), (2, 112), (3, 224)])
def test_subdivision_steps_give_the_configured_size(steps, size):
    """``subdivision_steps`` 2x steps from the 28x28 SAG-Mask logits; each step upsamples bilinearly and replaces
    the ``subdivision_num_points`` most uncertain logits by the point head's (the others stay interpolated)."""
    head = toy_model(subdivision_steps=steps).roi_head.eval()
    calls = []
    head.point_head.register_forward_hook(lambda m, args, out: calls.append(out.shape))
    x = feats(num_imgs=2)
    rois = torch.tensor([[0., 10., 10., 60., 70.], [0., 30., 5., 90., 40.], [1., 0., 0., 96., 96.]])
    coarse = torch.randn(3, 3, 28, 28)
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        refined = head.refine_mask_logits(x, rois, labels, coarse)
    assert refined.shape == (3, 3, size, size)
    assert calls == [(3, 3, 28 * 28)] * steps  # one point-head call per step, subdivision_num_points points
    if steps == 1:
        upsampled = F.interpolate(coarse, scale_factor=2, mode='bilinear', align_corners=False)
        changed = (refined != upsampled).flatten(2).sum(-1)
        assert (changed <= 28 * 28).all() and changed.sum() > 0


def test_predict_scores_the_coarse_mask_and_pastes_the_refined_one():
    """Inference: the MaskIoU head sees the 28x28 coarse mask (§6), the refined 112x112 logits are pasted at the
    original image size."""
    head = toy_model().roi_head.eval()
    seen = {}
    head.mask_iou_head.register_forward_pre_hook(lambda m, args: seen.update(iou_mask=args[1].shape))
    results = InstanceData(bboxes=torch.tensor([[10., 10., 60., 70.], [30., 5., 90., 40.]]),
                           scores=torch.tensor([0.9, 0.6]), labels=torch.tensor([0, 2]))
    meta = dict(img_shape=(96, 96), ori_shape=(120, 120), scale_factor=(0.8, 0.8))
    x = feats()
    with torch.no_grad():
        rois = torch.tensor([[0., 10., 10., 60., 70.], [0., 30., 5., 90., 40.]])
        logits, scores = head.mask_logits_and_scores(x, rois, [results], [meta])
        out = head.predict_mask(x, [meta], [results.clone()], rescale=True)[0]
        tensor_outs = head.forward(x, [results.clone()], [SimpleNamespace(metainfo=meta)])  # FLOP counting
    assert logits.shape == (2, 3, 112, 112) and seen['iou_mask'] == (2, 28, 28)
    assert tensor_outs[0].shape == (2, 3, 112, 112) and tensor_outs[1].shape == (2, 3)
    assert out.masks.shape == (2, 120, 120) and out.masks.dtype == torch.bool
    assert torch.equal(out.mask_scores, scores)


def test_model_predicts_masks_of_the_original_image_size():
    model = toy_model().eval()
    calls = []
    model.roi_head.point_head.register_forward_hook(lambda m, args, out: calls.append(out.shape))
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128), (3, 128, 96)], num_items=[2, 1],
                            num_classes=3)
    with torch.no_grad():
        samples = model.test_step(packed)
    assert len(calls) == 2  # the two subdivision steps, for the boxes of both images at once
    for sample in samples:
        pred = sample.pred_instances
        assert len(pred) > 0 and tuple(pred.masks.shape) == (len(pred), *sample.ori_shape)


@pytest.mark.parametrize('change, message', [
    (dict(point_head=dict(type='MaskPointHead', num_classes=80)), r'point_head.num_classes=80, expected 3'),
    (dict(point_head=dict(type='MaskPointHead', in_channels=128)), r'point_head.in_channels=128, expected 384'),
    (dict(test_cfg=dict(mask_thr_binary=0.5)), r"test_cfg.rcnn lacks \['subdivision_steps'"),
])
def test_point_head_settings_that_do_not_fit_fail_at_build(change, message):
    cfg = model_cfg(*TOY)
    roi_head = dict(cfg.roi_head, train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn)
    roi_head['mask_head'] = dict(roi_head['mask_head'], num_classes=3)
    roi_head.update(change)
    with pytest.raises(ValueError, match=message):
        MODELS.build(roi_head)
