"""Finishing the exported graph's outputs outside it, with the model's own functions (clip, drop, paste)."""
from typing import Dict, Sequence

import numpy as np
import torch
from mmengine.structures import InstanceData

from ..models.layers import detectron2_box_scale, final_boxes, paste_masks_in_image


def postprocess_outputs(outputs: Dict[str, np.ndarray], meta: dict, postprocess: str = 'detectron2',
                        mask_thr_binary: float = 0.5, rescale: bool = True) -> InstanceData:
    """The graph's outputs (``boxes [N, 4]``, ``labels [N]``, ``scores [N]``, ``mask_scores [N]``,
    ``masks [N, 28, 28]`` probabilities; numpy arrays or tensors) -> ``pred_instances`` as CenterMask's ``predict``
    gives them: ``bboxes [M, 4]``, ``labels``, ``scores``, ``mask_scores`` ``[M]`` and bool ``masks [M, h, w]``.

    ``meta``: mmdet's image meta (``img_shape``; with ``rescale`` also ``ori_shape``, and ``scale_factor`` for
    ``postprocess='mmdet'``): the
    output image is ``ori_shape`` when ``rescale``, else ``img_shape``. ``postprocess`` and ``mask_thr_binary`` are
    the model's ``test_cfg.rcnn`` values. The same steps as :meth:`CenterMaskRoIHead.paste_masks` (it calls the same
    :func:`final_boxes` and :func:`paste_masks_in_image`).
    """
    if postprocess not in ('detectron2', 'mmdet'):
        raise ValueError(f"postprocess must be 'detectron2' or 'mmdet', got {postprocess!r}")
    if mask_thr_binary < 0:
        raise NotImplementedError('mask_thr_binary < 0 (soft uint8 masks) is not supported for exported models')
    t = {k: torch.as_tensor(np.asarray(v)) for k, v in outputs.items()}
    out_h, out_w = (meta['ori_shape'] if rescale else meta['img_shape'])[:2]
    clip = postprocess == 'detectron2'
    factor: Sequence[float] = (detectron2_box_scale(meta) if clip else meta['scale_factor']) if rescale else None
    keep, boxes = final_boxes(t['boxes'].float(), out_h, out_w, None if clip else factor, clip,
                              box_scale=factor if clip else None)
    results = InstanceData(bboxes=boxes, labels=t['labels'].long()[keep], scores=t['scores'][keep],
                           mask_scores=t['mask_scores'][keep])
    results.masks = paste_masks_in_image(t['masks'][keep], boxes, out_h, out_w, mask_thr_binary)
    return results
