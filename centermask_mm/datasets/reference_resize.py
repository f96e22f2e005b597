"""Test-time resize of the CenterMask paper code (maskrcnn-benchmark), for the configs of its checkpoints.

centermask2 (detectron2) resizes with ``ResizeShortestEdge``, whose arithmetic mmdet ships as
:class:`mmdet.datasets.transforms.ResizeShortestEdge` (used as it is by the centermask2 configs). The paper code
sizes its images by another rule (docs/reference.md §7.3, test-time resize), written here.
"""
from typing import Tuple, Union

import numpy as np
from mmdet.datasets.transforms import ResizeShortestEdge
from mmdet.registry import TRANSFORMS


def maskrcnn_benchmark_output_shape(h: int, w: int, short_edge: int, max_size: int) -> Tuple[int, int]:
    """``(new_h, new_w)`` of an ``h x w`` image under maskrcnn-benchmark's ``Resize``: when the long side would
    exceed ``max_size``, the short side becomes ``round(max_size * short / long)``; the short side is set to that
    size and the long side *truncated* (``int(size * long / short)``); an image whose short side already has that
    size keeps its size. detectron2 instead rounds both sides of its float sizes (mmdet's ``ResizeShortestEdge``),
    so some sizes differ by one pixel."""
    size = short_edge
    if max_size is not None:
        min_original, max_original = float(min(h, w)), float(max(h, w))
        if max_original / min_original * size > max_size:
            size = int(round(max_size * min_original / max_original))
    if (w <= h and w == size) or (h <= w and h == size):
        return h, w
    if w < h:
        return int(size * h / w), size
    return size, int(size * w / h)


@TRANSFORMS.register_module()
class MaskRCNNBenchmarkResize(ResizeShortestEdge):
    """mmdet's :class:`ResizeShortestEdge` (same arguments: ``scale`` the short side, ``max_size``, and the
    keyword arguments of the inner ``Resize``, e.g. ``backend='pillow'``) with the output size of
    :func:`maskrcnn_benchmark_output_shape` instead of detectron2's; only that size differs. ``img_shape`` and
    ``scale_factor`` (``new / old`` per axis) are set by the inner ``Resize`` as usual."""

    def _get_output_shape(self, img: np.ndarray, short_edge_length: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
        short = short_edge_length if isinstance(short_edge_length, int) else min(short_edge_length)
        new_h, new_w = maskrcnn_benchmark_output_shape(img.shape[0], img.shape[1], short, self.max_size)
        return new_w, new_h
