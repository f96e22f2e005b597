"""Traceable forms of the decoding steps whose PyTorch form branches on the data (the ONNX export traces them).

Each computes the same values as the PyTorch path; :func:`is_tracing` selects them. Callers look it up on this
module (``tracing.is_tracing()``) so that tests can patch it here to run the traceable forms in PyTorch.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor


def is_tracing() -> bool:
    """Whether the model runs under ``torch.jit`` tracing (the ONNX export): selects the traceable variants, which
    compute the same values (tests patch this function to run them in PyTorch)."""
    return torch.jit.is_tracing()


def topk_count(scores: Tensor, nms_pre: int):
    """How many of the ``M`` scores of each row of ``scores [..., M]`` a level keeps: ``min(nms_pre, M)`` (all ``M``
    when ``nms_pre <= 0``).

    An ``int`` in PyTorch; while tracing (ONNX export) a 0-d tensor computed from the traced shape, so that one
    exported graph keeps ``min(nms_pre, M)`` at every input size (an ``int`` would freeze the traced size's count).
    """
    if not is_tracing():
        return scores.shape[-1] if nms_pre <= 0 else min(nms_pre, scores.shape[-1])
    count = torch._shape_as_tensor(scores)[-1]
    return count if nms_pre <= 0 else count.clamp(max=nms_pre)


def batched_nms_traceable(boxes: Tensor, scores: Tensor, idxs: Tensor, nms_cfg: dict) -> Tuple[Tensor, Tensor]:
    """mmcv's ``batched_nms`` for ``nms_cfg=dict(type='nms', iou_threshold=t)`` in a form that traces to standard ONNX
    at any number of boxes: ``boxes [n, 4]``, ``scores [n]``, ``idxs [n]`` (class) -> ``(dets [k, 5], keep [k])``.

    The same computation (each class offset by ``label * (max coordinate + 1)``, one greedy NMS suppressing
    IoU > t, kept by decreasing score) with torchvision's ``nms`` (-> ``NonMaxSuppression``) instead of mmcv's
    compiled op (no ONNX symbolic), and the max coordinate of no box taken as -inf instead of raising (what ONNX's
    ``ReduceMax`` gives), so that a graph traced on an input without candidates still holds the NMS.
    """
    if nms_cfg.get('type', 'nms') != 'nms' or nms_cfg.get('class_agnostic', False) or \
            set(nms_cfg) - {'type', 'iou_threshold', 'class_agnostic', 'split_thr'}:
        raise NotImplementedError(f'tracing supports nms=dict(type=\'nms\', iou_threshold=...) only, got {nms_cfg}')
    # -inf appended with a Pad (a concatenated constant as large as -inf does not export: int64 overflow)
    max_coordinate = F.pad(boxes.reshape(-1), (0, 1), value=float('-inf')).max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    keep = torchvision.ops.nms(boxes + offsets[:, None], scores, float(nms_cfg['iou_threshold']))
    return torch.cat([boxes[keep], scores[keep][:, None]], -1), keep
