
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs

from tests.helpers import model_cfg

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
