
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.testing import demo_mm_inputs

from tests.helpers import build_with, model_cfg

CONFIGS = ['centermask/centermask_v2-39_fpn_ms-3x_coco.py', 'centermask/centermask-lite_v2-19_fpn_ms-4x_coco.py']
LOSS_KEYS = {'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask', 'loss_mask_iou'}


def build(config, **overrides):
    cfg = model_cfg(config)
    cfg.backbone.init_cfg = None
    cfg.update(overrides)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def run(model, num_items, mode, shapes=(3, 128, 160)):
    packed = demo_mm_inputs(batch_size=len(num_items), image_shapes=[shapes] * len(num_items),
                            num_items=num_items, num_classes=10, with_mask=True)
    data = model.data_preprocessor(packed, mode == 'loss')
    if mode == 'loss':
        return model(**data, mode='loss')
    with torch.no_grad():
        return model(**data, mode=mode)


@pytest.mark.parametrize('config', CONFIGS)
def test_loss_and_predict(config):
    model = build(config)
    model.train()
    losses = run(model, [3, 0], 'loss')  # the second image has no GT
    assert set(losses) == LOSS_KEYS
    total = sum(v for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.roi_head.mask_head.conv_logits.weight.grad is not None

    model.eval()
    results = run(model, [3, 1], 'predict')
    for sample in results:
        pred = sample.pred_instances
        n = len(pred)
        assert n <= 50
        assert pred.bboxes.shape == (n, 4) and pred.labels.shape == (n, ) and pred.scores.shape == (n, )
        assert pred.masks.shape == (n, *sample.ori_shape) and pred.masks.dtype == torch.bool
        assert pred.mask_scores.shape == (n, )


def test_no_gt_at_all_gives_zero_mask_losses():
    model = build(CONFIGS[1])
    model.train()
    losses = run(model, [0, 0], 'loss')
    assert losses['loss_mask'].item() == 0 and losses['loss_mask_iou'].item() == 0
    assert losses['loss_cls'].item() > 0


def test_mask_rcnn_level_rule_switch():
    cfg = model_cfg(CONFIGS[1])
    cfg.backbone.init_cfg = None
    cfg.roi_head.mask_roi_extractor.type = 'SingleRoIExtractor'
    model = MODELS.build(cfg)
    model.train()
    assert set(run(model, [2, 1], 'loss')) == LOSS_KEYS


def test_tensor_mode_runs_mask_branch():
    model = build(CONFIGS[1]).eval()
    seen = []
    model.roi_head.mask_head.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    outs = run(model, [2], 'tensor')
    assert len(outs) == 3 + 2  # FCOS cls/bbox/centerness + mask logits + MaskIoU
    assert seen


def test_bad_cfg_is_refused():
    cfg = model_cfg(CONFIGS[1])
    cfg.test_cfg = dict(max_per_img=50)
    with pytest.raises(ValueError, match='test_cfg=dict\\(rpn=..., rcnn=...\\)'):
        MODELS.build(cfg)


def packed_batch(model, shapes=((3, 128, 160), (3, 96, 160))):
    packed = demo_mm_inputs(batch_size=len(shapes), image_shapes=list(shapes), num_items=[2] * len(shapes),
                            num_classes=10)
    return model.data_preprocessor(packed, False)


def test_predict_fixed_shape_contract():
    """``predict_fixed_shape``: neck features, the FCOS maps and the candidates of ``select_candidates``, all of
    shapes fixed by the input size; ``predict`` decodes those candidates as the head would compute them itself."""
    model = build(CONFIGS[1]).eval()
    torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)  # detections everywhere
    data = packed_batch(model)
    inputs, samples = data['inputs'], data['data_samples']
    head, cfg = model.bbox_head, model.bbox_head.test_cfg
    with torch.no_grad():
        feats, head_outs, (scores, index) = model.predict_fixed_shape(inputs, cfg)
        assert [tuple(f.shape[-2:]) for f in feats] == [(-(-inputs.shape[2] // s), -(-inputs.shape[3] // s))
                                                         for s in head.strides]  # (rounded up)
        cls_scores, bbox_preds, centernesses = head_outs
        assert [c.shape[1] for c in cls_scores] == [head.num_classes] * len(feats)
        assert [b.shape[1] for b in bbox_preds] == [4] * len(feats)
        assert [c.shape[1] for c in centernesses] == [1] * len(feats)
        size = sum(min(cfg.nms_pre, c.shape[2] * c.shape[3] * head.num_classes) for c in cls_scores)
        assert scores.shape == index.shape == (len(samples), size)
        assert torch.equal(model.predict_fixed_shape(inputs)[2][1], index)  # cfg None: the head's test_cfg
        metas = [s.metainfo for s in samples]
        given = head.predict_by_feat(*head_outs, batch_img_metas=metas, candidates=(scores, index))
        computed = head.predict_by_feat(*head_outs, batch_img_metas=metas)
        for a, b in zip(given, computed):
            assert len(a) > 0
            for key in ('bboxes', 'scores', 'labels'):
                assert torch.equal(a.get(key), b.get(key)), key
        expected = model.roi_head.predict(feats, computed, samples, rescale=False)  # what predict composed before
        results = model.predict(inputs, samples, rescale=False)
    for sample, instances in zip(results, expected):
        for key in ('bboxes', 'scores', 'labels', 'masks', 'mask_scores'):
            assert torch.equal(sample.pred_instances.get(key), instances.get(key)), key


def test_plain_mmdet_fcos_head_as_box_stage():
    """With mmdet's own ``FCOSHead`` the fixed-shape part selects no candidates and ``predict`` uses the head's own
    ``predict_by_feat``: the detections are those of ``bbox_head.predict``."""
    model = build(CONFIGS[1], bbox_head=dict(model_cfg(CONFIGS[1]).bbox_head, type='FCOSHead')).eval()
    torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)
    assert type(model.bbox_head).__name__ == 'FCOSHead'
    data = packed_batch(model)
    with torch.no_grad():
        feats, head_outs, candidates = model.predict_fixed_shape(data['inputs'])
        assert candidates is None and len(head_outs) == 3
        boxes = model.bbox_head.predict(feats, data['data_samples'], rescale=False)
        assert all(len(b) > 0 for b in boxes)
        expected = model.roi_head.predict(feats, boxes, data['data_samples'], rescale=False)  # predict before
        results = model.predict(data['inputs'], data['data_samples'], rescale=False)
        outs = model._forward(data['inputs'], data['data_samples'])
    assert len(outs) == 3 + 2
    for sample, instances in zip(results, expected):
        for key in ('bboxes', 'scores', 'labels', 'masks', 'mask_scores'):
            assert torch.equal(sample.pred_instances.get(key), instances.get(key)), key


def test_training_rois_are_decoded_with_the_training_cfg():
    """§4.4 step 1: in training the mask branch gets FCOS's detections decoded with ``train_cfg.rpn_proposal``
    (here at most 3 per image), not with the test cfg (50), and without gradient."""
    model = build_with()  # the toy CenterMask-Lite, default init
    model.train_cfg['rpn_proposal']['max_per_img'] = 3
    torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)  # every location a detection
    model.train()
    seen = []
    roi_loss = model.roi_head.loss
    model.roi_head.loss = lambda x, proposals, samples: seen.append(proposals) or roi_loss(x, proposals, samples)
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 96)] * 2, num_items=[1, 2], num_classes=3,
                            with_mask=True)
    model(**model.data_preprocessor(packed, True), mode='loss')
    assert model.test_cfg['rpn']['max_per_img'] == 50 and [len(p) for p in seen[0]] == [3, 3]
    assert not any(p.bboxes.requires_grad for p in seen[0])


def test_predict_rescales_boxes_and_masks_to_the_original_image():
    """§4.5: with ``rescale`` the boxes and masks are brought to ``ori_shape`` (here half the input size, so the
    boxes are those at the input size divided by 2), without it they stay at ``img_shape``."""
    model = build_with().eval()  # the toy CenterMask-Lite, default init
    torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)
    meta = dict(img_shape=(64, 96), ori_shape=(32, 48), scale_factor=(2.0, 2.0), pad_shape=(64, 96),
                batch_input_shape=(64, 96))
    inputs = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        big = model.predict(inputs, [DetDataSample(metainfo=meta)], rescale=False)[0].pred_instances
        small = model.predict(inputs, [DetDataSample(metainfo=meta)], rescale=True)[0].pred_instances
    assert len(big) > 0 and big.masks.shape[1:] == (64, 96) and small.masks.shape[1:] == (32, 48)
    assert torch.equal(small.scores, big.scores)
    assert torch.allclose(small.bboxes, big.bboxes / 2)
