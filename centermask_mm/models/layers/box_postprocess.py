"""The last step on the boxes before pasting: to the output image, clipped, empty ones dropped (ref §4.5)."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


def final_boxes(boxes: Tensor, out_h: int, out_w: int, scale_factor: Optional[Sequence[float]] = None,
                clip: bool = True) -> Tuple[Tensor, Tensor]:
    """``boxes [N, 4]`` (x1, y1, x2, y2 in the network input's coordinates) -> ``(keep [M], boxes [M, 4])``.

    The boxes are divided by ``scale_factor`` (``(w_scale, h_scale)``; ``None``: already in the output image), and
    clipped to ``[0, out_w] x [0, out_h]``; ``keep`` (int64 indices into ``boxes``) are those with a positive width and
    height after clipping (detectron2's ``Boxes.nonempty()``: the box overlaps the output image). ``boxes`` comes
    back clipped when ``clip`` (``postprocess='detectron2'``), else unclipped (``'mmdet'``), at ``keep``.

    Used by :meth:`CenterMaskRoIHead.paste_masks` and by the ONNX Runtime post-processing
    (:mod:`centermask_mm.deployment`), so that both finish the detections with the same code.
    """
    if scale_factor is not None:
        boxes = boxes / boxes.new_tensor(scale_factor).repeat(1, 2)
    clipped = torch.stack([boxes[:, 0].clamp(0, out_w), boxes[:, 1].clamp(0, out_h),
                           boxes[:, 2].clamp(0, out_w), boxes[:, 3].clamp(0, out_h)], dim=1)
    keep = ((clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])).nonzero(as_tuple=True)[0]
    return keep, (clipped if clip else boxes)[keep]
