"""Swap mmcv's RoIAlign for torchvision's, which computes the same values and exports to standard ONNX.

mmcv 2.x's compiled ops have no ONNX symbolic (they would become custom-domain nodes or fail to export);
torchvision registers ``torchvision::roi_align`` -> ``RoiAlign`` (``coordinate_transformation_mode`` for the aligned
mode at opset >= 16) and ``torchvision::nms`` -> ``NonMaxSuppression``. Both implement the same algorithms as mmcv's
CPU/CUDA kernels (detectron2's RoIAlign; greedy NMS suppressing IoU > threshold, kept indices by decreasing score),
so the swap changes no output (tests/test_deployment/test_traceable_variants.py). The NMS is swapped by the FCOS head
itself while tracing (:func:`centermask_mm.models.utils.tracing.batched_nms_traceable`), as it also has to trace
without any box.
"""
import contextlib
from typing import Iterator, Tuple

import mmcv.ops
import torch.nn as nn
import torchvision
from torch import Tensor


class TorchvisionRoIAlign(nn.Module):
    """mmcv's ``RoIAlign`` (``pool_mode='avg'``) as ``torchvision.ops.roi_align``.

    ``forward(input [B, C, H, W], rois [N, 5] (batch_idx, x1, y1, x2, y2)) -> [N, C, *output_size]``.
    """

    def __init__(self, output_size: Tuple[int, int], spatial_scale: float, sampling_ratio: int, aligned: bool):
        super().__init__()
        self.output_size = tuple(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)

    @classmethod
    def from_mmcv(cls, layer: nn.Module) -> 'TorchvisionRoIAlign':
        if getattr(layer, 'pool_mode', 'avg') != 'avg':
            raise NotImplementedError(f'RoIAlign pool_mode={layer.pool_mode!r}: torchvision and ONNX RoiAlign '
                                      'average only here (no ONNX mapping for mmcv max pooling)')
        return cls(layer.output_size, layer.spatial_scale, layer.sampling_ratio, layer.aligned)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        return torchvision.ops.roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio,
                                         self.aligned)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, aligned={self.aligned}')


#: mmcv ops that have no standard-ONNX counterpart here (deformable convolutions of the DCN configs)
UNSUPPORTED = ('ModulatedDeformConv2d', 'DeformConv2d')


@contextlib.contextmanager
def traceable_ops(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every mmcv ``RoIAlign`` module of ``model`` is a :class:`TorchvisionRoIAlign` (restored
    on exit; the FCOS head's NMS selects its traceable form itself while tracing, see
    :func:`centermask_mm.models.utils.tracing.batched_nms_traceable`). Raises
    ``NotImplementedError`` for a model with a deformable convolution (DCN: no standard ONNX op)."""
    for name, module in model.named_modules():
        if type(module).__name__.startswith(UNSUPPORTED):
            raise NotImplementedError(f'{name}: {type(module).__name__} (mmcv deformable convolution) has no '
                                      'standard ONNX op; DCN models cannot be exported')
    swapped = []
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, mmcv.ops.RoIAlign):
                setattr(parent, child_name, TorchvisionRoIAlign.from_mmcv(child))
                swapped.append((parent, child_name, child))
    try:
        yield model
    finally:
        for parent, child_name, child in swapped:
            setattr(parent, child_name, child)
