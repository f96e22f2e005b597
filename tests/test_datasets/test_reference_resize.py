"""Test-time resize of the zoo configs: centermask2's configs size images as detectron2's ``ResizeShortestEdge``,
the paper code's (maskrcnn-benchmark) configs as its ``Resize``; both rules are written out here from the
references' arithmetic and compared with the configs' pipelines."""
import numpy as np
import pytest
from mmcv.image import rescale_size
from mmdet.registry import TRANSFORMS
from mmengine.config import Config
from mmengine.dataset import Compose

from tests.helpers import config_path


def detectron2_shape(h, w, short, max_size):
    """detectron2 ``ResizeShortestEdge.get_output_shape`` (v0.3): ``scale = short / min(h, w)``, the short side set
    to ``short`` and the other scaled, both scaled down when the long side exceeds ``max_size``, then each rounded
    with ``int(x + 0.5)``."""
    scale = short * 1.0 / min(h, w)
    if h < w:
        newh, neww = short, scale * w
    else:
        newh, neww = scale * h, short
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def maskrcnn_benchmark_shape(h, w, short, max_size):
    """maskrcnn-benchmark ``Resize.get_size``: the short side is reduced to ``round(max_size * min / max)`` when the
    long side would exceed ``max_size``; the long side is truncated (``int``); an image whose short side already has
    the size keeps its size."""
    size = short
    if max(h, w) / min(h, w) * size > max_size:
        size = int(round(max_size * min(h, w) / max(h, w)))
    if (w <= h and w == size) or (h <= w and h == size):
        return h, w
    if w < h:
        return int(size * h / w), size
    return size, int(size * w / h)


class _Shape:
    """Stands for an image in ``_get_output_shape``, which reads only ``img.shape``."""

    def __init__(self, h, w):
        self.shape = (h, w, 3)


SIZES = range(100, 1401)


@pytest.mark.parametrize('short, max_size, differ_from_mmdet_resize', [(600, 1000, 252), (800, 1333, 280)])
def test_resize_shortest_edge_is_detectron2s_at_every_size(short, max_size, differ_from_mmdet_resize):
    """Every (h, w) from 100 to 1400 px: mmdet's ResizeShortestEdge gives detectron2's size; mmdet's
    ``Resize(keep_ratio=True)`` (one scale factor, mmcv's ``rescale_size``) differs at the counted sizes."""
    resize = TRANSFORMS.build(dict(type='ResizeShortestEdge', scale=short, max_size=max_size))
    mismatches, differ = [], 0
    for h in SIZES:
        for w in SIZES:
            expected = detectron2_shape(h, w, short, max_size)
            new_w, new_h = resize._get_output_shape(_Shape(h, w), short)
            if (new_h, new_w) != expected:
                mismatches.append((h, w))
            if rescale_size((w, h), (max_size, short))[::-1] != expected:
                differ += 1
    assert not mismatches, mismatches[:10]
    assert differ == differ_from_mmdet_resize


@pytest.mark.parametrize('short, max_size', [(600, 1000), (800, 1333)])
def test_maskrcnn_benchmark_resize_at_every_size(short, max_size):
    resize = TRANSFORMS.build(dict(type='MaskRCNNBenchmarkResize', scale=short, max_size=max_size))
    mismatches, differ = [], 0
    for h in SIZES:
        for w in SIZES:
            expected = maskrcnn_benchmark_shape(h, w, short, max_size)
            new_w, new_h = resize._get_output_shape(_Shape(h, w), short)
            mismatches += [(h, w)] if (new_h, new_w) != expected else []
            differ += expected != detectron2_shape(h, w, short, max_size)
    assert not mismatches, mismatches[:10]
    assert differ > 1000  # the two rules do differ (truncation vs rounding)


# (config, short side, max size, rule); the test pipeline without its loader and annotations
ZOO = [('centermask_v2-39_fpn_ms-3x_coco.py', 800, 1333, detectron2_shape),
       ('centermask_v2-99-dcn_fpn_ms-3x_coco.py', 800, 1333, detectron2_shape),
       ('centermask-lite_v2-19_fpn_ms-4x_coco.py', 600, 1000, detectron2_shape),
       ('centermask-lite_v2-19-slim-dw_fpn_ms-4x_coco.py', 600, 1000, detectron2_shape),
       ('centermask_v2-39_fpn_ms-3x_coco_maskrcnn-benchmark.py', 800, 1333, maskrcnn_benchmark_shape),
       ('centermask_v2-39_fpn_ms-2x_coco_maskrcnn-benchmark.py', 800, 1333, maskrcnn_benchmark_shape),
       ('centermask_r-50_fpn_ms-3x_coco_maskrcnn-benchmark.py', 800, 1333, maskrcnn_benchmark_shape),
       ('centermask-lite_v2-19_fpn_ms-4x_coco_maskrcnn-benchmark.py', 600, 1000, maskrcnn_benchmark_shape)]


@pytest.mark.parametrize('config, short, max_size, rule', ZOO, ids=[z[0] for z in ZOO])
def test_zoo_test_pipelines_resize_like_their_reference(config, short, max_size, rule):
    """The listed sizes (the fidelity runs' photos, and one where the references disagree with mmdet's Resize):
    the pipeline's ``img_shape``, the image it produces and ``scale_factor`` (new / old per axis)."""
    cfg = Config.fromfile(config_path('centermask', config))
    steps = [s for s in cfg.test_dataloader.dataset.pipeline
             if s['type'] not in ('LoadImageFromFile', 'LoadAnnotations', 'PackDetInputs')]
    assert len(steps) == 1, steps
    assert cfg.val_dataloader.dataset.pipeline == cfg.test_dataloader.dataset.pipeline
    pipeline = Compose(steps)
    for h, w in [(480, 640), (333, 501), (360, 640), (427, 640), (640, 359), (1067, 1600)]:
        out = pipeline(dict(img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w), ori_shape=(h, w)))
        expected = rule(h, w, short, max_size)
        assert out['img_shape'] == expected and out['img'].shape[:2] == expected, (h, w)
        assert np.allclose(out['scale_factor'], (expected[1] / w, expected[0] / h))
