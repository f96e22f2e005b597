"""The last step on the boxes before pasting: to the output image, clipped, empty ones dropped (ref §4.5)."""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor


def detectron2_box_scale(meta: dict) -> Tuple[float, float]:
    """detectron2's rescale factors ``(output_w / input_w, output_h / input_h)`` of an image: its original size
    (``ori_shape``) over the size the network saw (``img_shape``, resized and unpadded), as Python floats."""
    (in_h, in_w), (out_h, out_w) = meta['img_shape'][:2], meta['ori_shape'][:2]
    return float(out_w) / float(in_w), float(out_h) / float(in_h)


def final_boxes(boxes: Tensor, out_h: Union[int, Tensor], out_w: Union[int, Tensor],
                scale_factor: Optional[Union[Sequence[float], Tensor]] = None,
                clip: bool = True,
                box_scale: Optional[Union[Sequence[float], Tensor]] = None) -> Tuple[Tensor, Tensor]:
    """``boxes [N, 4]`` (x1, y1, x2, y2 in the network input's coordinates) -> ``(keep [M], boxes [M, 4])``.

    The boxes are brought to the output image by dividing them by ``scale_factor`` (mmdet's arithmetic:
    ``(w_scale, h_scale)``, or per box ``[N, 2]``) or by multiplying them by ``box_scale`` (detectron2's
    ``Boxes.scale`` with :func:`detectron2_box_scale`: ``(output / input)`` per axis rounded to the boxes' dtype,
    or per box ``[N, 2]``); the two differ by one ulp in many coordinates. Neither: already in the output image.
    They are then clipped to ``[0, out_w] x [0, out_h]`` (ints, or per box ``[N]`` float tensors);
    ``keep`` (int64 indices into ``boxes``) are those with a positive width and height after clipping
    (detectron2's ``Boxes.nonempty()``: the box overlaps the output image). ``boxes`` comes back clipped when
    ``clip`` (``postprocess='detectron2'``), else unclipped (``'mmdet'``), at ``keep``.

    Used by :meth:`CenterMaskRoIHead.paste_masks` (all images of a batch at once, per-box sizes) and by the ONNX
    Runtime post-processing (:mod:`centermask_mm.deployment`), so that both finish the detections with the same code.
    """
    if scale_factor is not None and box_scale is not None:
        raise ValueError('final_boxes: pass scale_factor (divide, mmdet) or box_scale (multiply, detectron2), '
                         'not both')
    if scale_factor is not None:
        boxes = boxes / torch.as_tensor(scale_factor, dtype=boxes.dtype, device=boxes.device).repeat(1, 2)
    elif box_scale is not None:
        boxes = boxes * torch.as_tensor(box_scale, dtype=boxes.dtype, device=boxes.device).repeat(1, 2)
    clipped = boxes.clamp(min=0)
    if isinstance(out_w, Tensor):  # per box
        clipped = torch.minimum(clipped, torch.stack([out_w, out_h], dim=1).repeat(1, 2))
    else:
        clipped[:, 0::2].clamp_(max=out_w)
        clipped[:, 1::2].clamp_(max=out_h)
    keep = (clipped[:, 2:] > clipped[:, :2]).all(dim=1).nonzero(as_tuple=True)[0]
    return keep, (clipped if clip else boxes)[keep]
