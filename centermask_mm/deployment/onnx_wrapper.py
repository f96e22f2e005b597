"""The traced module: CenterMask inference from a pre-processed image tensor to per-box results before pasting."""
from typing import Tuple

import torch.nn as nn
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

#: names of the exported graph's inputs and outputs, in order
INPUT_NAMES = ('image', 'img_shape')
OUTPUT_NAMES = ('boxes', 'labels', 'scores', 'mask_scores', 'masks')


class CenterMaskONNXWrapper(nn.Module):
    """Wraps a :class:`CenterMask` (with a :class:`CenterMaskFCOSHead`) in eval mode for ``torch.onnx.export``;
    runs the model's own inference code (``predict_fixed_shape``, the FCOS head's ``predict_by_feat`` on its
    candidates, the RoI head's ``mask_logits_and_scores`` and ``mask_probs``) up to, not including, the final box
    clipping and mask pasting.

    Inputs:
        image: ``[1, 3, H, W]`` float32, normalised and padded as the model's ``data_preprocessor`` does (H and W
            multiples of its ``pad_size_divisor``).
        img_shape: ``[2]`` int64 ``(h, w)``, the resized image inside the padding (mmdet's ``img_shape``): the
            scale-adaptive RoI level of each box depends on its area.

    Outputs (N <= ``test_cfg.rpn.max_per_img`` detections, by decreasing score):
        boxes ``[N, 4]`` float32 (x1, y1, x2, y2) in ``image`` coordinates, unclipped (the FCOS boxes the masks
        were predicted on); labels ``[N]`` int64; scores ``[N]`` float32 (box scores); mask_scores ``[N]`` float32
        (``scores * MaskIoU``); masks ``[N, 28, 28]`` float32 mask probabilities of each box's class, relative to
        its box. Clipping, dropping empty boxes and pasting happen outside the graph
        (:func:`centermask_mm.deployment.postprocess.postprocess_outputs`), with the model's own functions.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, img_shape: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        meta = dict(img_shape=img_shape, pad_shape=image.shape[-2:], batch_input_shape=image.shape[-2:])
        bbox_head = self.model.bbox_head
        x, outs, candidates = self.model.predict_fixed_shape(image, bbox_head.test_cfg)
        results = bbox_head.predict_by_feat(*outs, batch_img_metas=[meta], rescale=False, candidates=candidates)[0]
        roi_head = self.model.roi_head
        mask_preds, mask_scores = roi_head.mask_logits_and_scores(
            x, roi_head.pooling_rois(bbox2roi([results.bboxes]), [meta]), [results], [meta])
        masks = roi_head.mask_probs(mask_preds, results.labels)
        return results.bboxes, results.labels, results.scores, mask_scores, masks
