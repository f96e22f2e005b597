"""The CenterMask COCO configs carry the reference schedules and model numbers (ref §7.1)."""
import pytest

from tests.helpers import load_config


@pytest.mark.parametrize('name, iters, steps, train_scales, test_scale, fpn, convs', [
    ('centermask_v2-39_fpn_ms-3x_coco.py', 270000, [210000, 250000],
     [(1333, s) for s in (640, 672, 704, 736, 768, 800)], (800, 1333), 256, 4),
    ('centermask-lite_v2-19_fpn_ms-4x_coco.py', 360000, [300000, 340000], [(1000, 580), (1000, 600)], (600, 1000),
     128, 2),
])
def test_reference_schedule(name, iters, steps, train_scales, test_scale, fpn, convs):
    cfg = load_config('centermask', name)
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 16  # 8 GPUs x 2
    assert cfg.optim_wrapper.optimizer.type == 'SGD' and cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.optim_wrapper.optimizer.momentum == 0.9 and cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    warmup, steps_cfg = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 0.001, 1000)
    assert steps_cfg.milestones == steps and cfg.train_cfg.max_iters == iters
    resize = cfg.train_dataloader.dataset.pipeline[2]
    assert resize.type == 'RandomChoiceResize' and [tuple(s) for s in resize.scales] == train_scales
    test_resize = cfg.test_dataloader.dataset.pipeline[1]  # detectron2's: short side, max size
    assert test_resize.type == 'ResizeShortestEdge' and (test_resize.scale, test_resize.max_size) == test_scale
    model = cfg.model
    assert model.neck.out_channels == fpn and model.bbox_head.stacked_convs == convs
    assert model.roi_head.mask_head.num_convs == convs and model.roi_head.mask_iou_head.num_convs == convs
    assert model.test_cfg.rpn.max_per_img == 50 and model.train_cfg.rpn_proposal.max_per_img == 100
    assert model.test_cfg.rpn.nms.iou_threshold == 0.6 and model.test_cfg.rpn.score_thr == 0.05
    assert model.data_preprocessor.bgr_to_rgb is False and model.data_preprocessor.std == [1.0, 1.0, 1.0]
