"""FCOS head with CenterMask's box decoding (ref §3.3, centermask2 ``FCOSOutputs.predict_proposals``)."""
from typing import List, Optional, Tuple

from collections import OrderedDict

import torch
import torch.nn.functional as F
import torchvision
from mmdet.models.dense_heads import FCOSHead
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_wh
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


def is_tracing() -> bool:
    """Whether the head runs under ``torch.jit`` tracing (the ONNX export): selects the traceable variants below,
    which compute the same values (tests patch this function to run them in PyTorch)."""
    return torch.jit.is_tracing()


def topk_count(scores: Tensor, nms_pre: int):
    """How many of the flat ``scores [M]`` a level keeps: ``min(nms_pre, M)`` (all ``M`` when ``nms_pre <= 0``).

    An ``int`` in PyTorch; while tracing (ONNX export) a 0-d tensor computed from the traced shape, so that one
    exported graph keeps ``min(nms_pre, M)`` at every input size (an ``int`` would freeze the traced size's count).
    """
    if not is_tracing():
        return scores.numel() if nms_pre <= 0 else min(nms_pre, scores.numel())
    count = torch._shape_as_tensor(scores)[0]
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


class CachedMlvlPointGenerator(MlvlPointGenerator):
    """mmdet's :class:`MlvlPointGenerator` that keeps the points of the last ``max_cached`` (feature-map sizes,
    dtype, device) it generated. The FCOS head asks for the same points on every image of a size: generating them
    takes 65 operator calls (about 40 GPU kernel launches) per predict, 8 % of a CenterMask V2-39 predict. The cached
    tensors are returned as they are (mmdet's consumers only read them: they are concatenated or indexed). While
    tracing (ONNX export, FLOP analysis) the points are generated from the traced sizes and not cached."""
    max_cached = 8

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cache = OrderedDict()

    def grid_priors(self, featmap_sizes, dtype=torch.float32, device='cuda', with_stride=False) -> List[Tensor]:
        if is_tracing():
            return super().grid_priors(featmap_sizes, dtype, device, with_stride)
        key = (tuple(tuple(int(x) for x in size) for size in featmap_sizes), dtype, str(device), with_stride)
        priors = self._cache.get(key)
        if priors is None:
            priors = super().grid_priors(featmap_sizes, dtype, device, with_stride)
            self._cache[key] = priors
            if len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return list(priors)


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

    While tracing (ONNX export) two data-dependent Python branches take a traceable form with the same values:
    :func:`topk_count` and the NMS step of :meth:`_bbox_post_process`.

    The location points come from :class:`CachedMlvlPointGenerator` (the same points, generated once per image size).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prior_generator = CachedMlvlPointGenerator(self.prior_generator.strides, self.prior_generator.offset)

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
            top_scores, top_index = scores.topk(topk_count(scores, nms_pre))
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

    def _bbox_post_process(self, results: InstanceData, cfg: ConfigDict, rescale: bool = False,
                           with_nms: bool = True, img_meta: Optional[dict] = None) -> InstanceData:
        """mmdet's, except while tracing (ONNX export), where mmdet's Python branches on the data (NMS skipped
        when no box is left; the small-box filter skipped when every box passes) would be frozen at the traced
        input: then the filter and the NMS (:func:`batched_nms_traceable`) always run, which gives the same
        results (NMS of no box is no box).
        ``results``: ``bboxes [n, 4], scores [n], labels [n]`` -> the same fields after NMS and ``max_per_img``."""
        if not is_tracing():
            return super()._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms, img_meta=img_meta)
        if rescale or not with_nms or hasattr(results, 'score_factors'):
            raise NotImplementedError('CenterMaskFCOSHead: tracing supports rescale=False, with_nms=True only')
        if cfg.get('min_bbox_size', -1) >= 0:
            w, h = get_box_wh(results.bboxes)
            results = results[(w > cfg.min_bbox_size) & (h > cfg.min_bbox_size)]
        det_bboxes, keep_idxs = batched_nms_traceable(results.bboxes, results.scores, results.labels, cfg.nms)
        results = results[keep_idxs]
        results.scores = det_bboxes[:, -1]
        return results[:cfg.max_per_img]
