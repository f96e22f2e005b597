"""FCOS head with CenterMask's box decoding (ref §3.3, centermask2 ``FCOSOutputs.predict_proposals``)."""
from typing import List, Optional

import torch
from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


@MODELS.register_module()
class CenterMaskFCOSHead(FCOSHead):
    """mmdet's :class:`FCOSHead` (towers, targets, focal / GIoU / centerness losses unchanged) whose decoding
    follows the reference instead of mmdet's.

    Per level (ref §3.3), for ``cls = sigmoid(cls_logits)`` ``[HW, C]`` and ``ctr = sigmoid(centerness)`` ``[HW]``:

    1. candidates are the (location, class) pairs with ``cls > score_thr`` (threshold on cls alone);
    2. the top ``nms_pre`` candidates are kept by ``cls * ctr`` (mmdet ranks by ``cls`` alone);
    3. the score is ``sqrt(cls * ctr)`` (centermask2) or ``cls * ctr`` (``score_sqrt=False``: maskrcnn-benchmark);
    4. boxes are not clipped to the image (centermask2) unless ``clip_bbox=True`` (maskrcnn-benchmark).

    Then class-aware NMS and the ``max_per_img`` best, as mmdet's ``_bbox_post_process``. ``score_sqrt`` and
    ``clip_bbox`` are read from the test / proposal cfg so that imported checkpoints can decode like their origin.

    It also decodes in training (``loss_and_predict``, the RoIs of the mask branch): FCOSHead keeps
    ``norm_on_bbox`` predictions in stride units while training, so they are scaled by the level stride here.
    """

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: Optional[ConfigDict] = None,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        cfg = self.test_cfg if cfg is None else cfg
        score_thr = cfg.get('score_thr', 0.05)
        nms_pre = cfg.get('nms_pre', -1)
        score_sqrt = cfg.get('score_sqrt', True)
        max_shape = img_meta['img_shape'] if cfg.get('clip_bbox', False) else None
        in_stride_units = self.training and self.norm_on_bbox

        # Per level: (location, class) pairs above score_thr ranked by cls * ctr, the best nms_pre kept. Pairs
        # below the threshold get -1 so that one top-k per level and one selection at the end replace a boolean
        # index per level (a host synchronisation each).
        level_scores, level_index, level_regs = [], [], []
        offset = 0
        for stride, cls_score, bbox_pred, centerness in zip(self.strides, cls_score_list, bbox_pred_list,
                                                            score_factor_list):
            # decoding runs in float32 whatever the network's precision (no-op in fp32; a half-precision model
            # would otherwise round box coordinates to 1 px above 1024 and give NMS half boxes)
            cls = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).float().sigmoid()
            ctr = centerness.permute(1, 2, 0).reshape(-1).float().sigmoid()
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4).float()
            if in_stride_units:
                bbox_pred = bbox_pred * (stride[0] if isinstance(stride, tuple) else stride)
            scores = torch.where(cls > score_thr, cls * ctr[:, None], cls.new_tensor(-1.0)).reshape(-1)
            k = scores.numel() if nms_pre <= 0 else min(nms_pre, scores.numel())
            top_scores, top_index = scores.topk(k)
            level_scores.append(top_scores)
            level_index.append(top_index + offset)
            level_regs.append(bbox_pred)
            offset += scores.numel()
        scores, index = torch.cat(level_scores), torch.cat(level_index)
        keep = (scores >= 0).nonzero(as_tuple=True)[0]
        scores, index = scores[keep], index[keep]
        prior_idx, labels = index // self.cls_out_channels, index % self.cls_out_channels
        bboxes = self.bbox_coder.decode(torch.cat(mlvl_priors)[prior_idx].float(), torch.cat(level_regs)[prior_idx],
                                        max_shape=max_shape)
        results = InstanceData(bboxes=bboxes, scores=scores.sqrt() if score_sqrt else scores, labels=labels)
        return self._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms, img_meta=img_meta)
