"""mmdet's multi-level point generator with a cache of the points it generated."""
from collections import OrderedDict
from typing import List

import torch
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.registry import TASK_UTILS
from torch import Tensor

from ...utils import tracing


@TASK_UTILS.register_module()
class CachedMlvlPointGenerator(MlvlPointGenerator):
    """mmdet's :class:`MlvlPointGenerator` that keeps the points of the last ``max_cached`` (feature-map sizes,
    dtype, device) it generated. The FCOS head asks for the same points on every image of a size, and generating
    them takes dozens of small operator calls (each a kernel launch on a GPU), a noticeable share of a predict. The
    cached tensors are returned as they are (mmdet's consumers only read them: they are concatenated or indexed).
    While tracing (ONNX export, FLOP analysis) the points are generated from the traced sizes and not cached."""
    max_cached = 8

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cache = OrderedDict()

    def grid_priors(self, featmap_sizes, dtype=torch.float32, device='cuda', with_stride=False) -> List[Tensor]:
        if tracing.is_tracing():
            return super().grid_priors(featmap_sizes, dtype, device, with_stride)
        key = (tuple(tuple(int(x) for x in size) for size in featmap_sizes), dtype, str(device), with_stride)
        priors = self._cache.get(key)
        if priors is None:
            priors = super().grid_priors(featmap_sizes, dtype, device, with_stride)
            self._cache[key] = priors
            if len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return list(priors)
