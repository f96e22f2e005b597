"""FCOS head with CenterMask's box decoding (ref §3.3, centermask2 ``FCOSOutputs.predict_proposals``)."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.ops import batched_nms
from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_wh
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from ..task_modules.prior_generators import CachedMlvlPointGenerator
from ..utils import tracing  # tracing.is_tracing() looked up at call time: tests patch it there
from ..utils.tracing import batched_nms_traceable, topk_count


def cap_detections(scores: Tensor, max_per_img: int, keep_ties: bool) -> Union[slice, Tensor]:
    """Which of the NMS survivors ``scores [n]`` (sorted by decreasing score, as NMS returns them) an image keeps:
    the ``max_per_img`` best, and with ``keep_ties`` also every further one whose score ties the
    ``max_per_img``-th (centermask2 and the paper code keep ``scores >= kthvalue(scores, n - max_per_img + 1)``
    after NMS, which can be more than ``max_per_img`` boxes).

    Returns a slice, or a bool mask ``[n]`` (ties kept, only when ``n > max_per_img``: one host read). While
    tracing, always a mask computed in the graph (the threshold is the ``max_per_img``-th score of the scores padded
    with -inf, so that fewer boxes than ``max_per_img`` keep all)."""
    if max_per_img <= 0 or not keep_ties:  # max_per_img 0 keeps none (mmdet), < 0 all
        return slice(None) if max_per_img < 0 else slice(0, max_per_img)
    if tracing.is_tracing():
        padded = F.pad(scores, (0, max_per_img), value=float('-inf'))
        return scores >= padded[max_per_img - 1]
    if scores.shape[0] <= max_per_img:
        return slice(None)
    return scores >= scores[max_per_img - 1]


@MODELS.register_module()
class CenterMaskFCOSHead(FCOSHead):
    """mmdet's :class:`FCOSHead` (towers, targets, focal / GIoU / centerness losses unchanged) whose decoding
    follows the reference instead of mmdet's.

    Per level (ref §3.3), for ``cls = sigmoid(cls_logits)`` ``[HW, C]`` and ``ctr = sigmoid(centerness)`` ``[HW]``:

    1. candidates are the (location, class) pairs with ``cls > score_thr`` (threshold on cls alone);
    2. the top ``nms_pre`` candidates are kept by ``cls * ctr`` (mmdet ranks by ``cls`` alone);
    3. the score is ``sqrt(cls * ctr)`` (centermask2) or ``cls * ctr`` (``score_sqrt=False``: maskrcnn-benchmark);
    4. boxes are not clipped to the image (centermask2) unless ``clip_bbox=True`` (maskrcnn-benchmark).

    Then class-aware NMS and the ``max_per_img`` best, as mmdet's ``_bbox_post_process``, plus (``keep_score_ties``,
    default ``True``: both references) every further box whose score ties the ``max_per_img``-th
    (:func:`cap_detections`). ``score_sqrt``, ``clip_bbox`` and ``keep_score_ties`` are read from the test /
    proposal cfg so that imported checkpoints can decode like their origin.

    It also decodes in training (``loss_and_predict``, the RoIs of the mask branch): FCOSHead keeps
    ``norm_on_bbox`` predictions in stride units while training, so they are scaled by the level stride here.

    While tracing (ONNX export) two data-dependent Python branches take a traceable form with the same values:
    :func:`topk_count` and the NMS step of :meth:`_bbox_post_process`.

    The location points come from :class:`CachedMlvlPointGenerator` (the same points, generated once per image size).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prior_generator = CachedMlvlPointGenerator(self.prior_generator.strides, self.prior_generator.offset)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True,
                        candidates: Optional[Tuple[Tensor, Tensor]] = None) -> List[InstanceData]:
        """The reference's decoding (class docstring) of a batch: every level and every image at once up to the
        candidates (score threshold, top-k, decoding, mmdet's ``min_bbox_size`` filter), then per image mmdet's NMS
        step (``batched_nms``, ``max_per_img``). With ``rescale`` (mmdet filters the rescaled boxes) and while
        tracing, mmdet's / the traceable :meth:`_bbox_post_process` does the filter and NMS instead.

        ``cls_scores[l] [B, C, H_l, W_l]``, ``bbox_preds[l] [B, 4, H_l, W_l]``, ``score_factors[l] [B, 1, H_l, W_l]``
        (centerness logits) -> one :class:`InstanceData` (``bboxes [n, 4], scores [n], labels [n]``) per image.
        mmdet's ``predict_by_feat`` decodes image by image and level by level (an operator call per step, each a
        kernel launch on a GPU); here one selection serves the whole batch, with far fewer calls and the same
        results. The inputs are detached (as mmdet's), so decoding in training builds no graph.

        ``candidates``: ``(scores, index)`` of :meth:`select_candidates` on these maps with this ``cfg``, computed
        beforehand (:meth:`CenterMask.predict_fixed_shape`, which a CUDA graph may replay); ``None`` computes them.
        """
        if score_factors is None:
            raise ValueError('CenterMaskFCOSHead.predict_by_feat needs the centerness (score_factors)')
        cfg = self.test_cfg if cfg is None else cfg
        num_classes = self.cls_out_channels
        priors = torch.cat(self.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores],
                                                            dtype=cls_scores[0].dtype, device=cls_scores[0].device))
        scores, index = self.select_candidates(cls_scores, score_factors, cfg) if candidates is None else candidates

        # bbox_pred [B, 4, N] over all locations of all levels, in float32 (see select_candidates)
        if self.training and self.norm_on_bbox:  # FCOSHead keeps these in stride units while training
            regs = [r.flatten(2) * (s[0] if isinstance(s, tuple) else s) for r, s in zip(bbox_preds, self.strides)]
        else:
            regs = [r.flatten(2) for r in bbox_preds]
        regs = torch.cat(regs, 2).detach().float().transpose(1, 2)  # [B, N, 4]

        # every candidate decoded (cheap), so that the box-size filter joins the score filter in one selection
        prior_index, labels = index // num_classes, index % num_classes  # [B, K]
        bboxes = self.bbox_coder.decode(priors[prior_index.flatten()].float(),
                                        regs.gather(1, prior_index[..., None].expand(-1, -1, 4)).flatten(0, 1))
        bboxes = bboxes.view(*index.shape, 4)  # [B, K, 4]
        if cfg.get('clip_bbox', False):  # as mmdet's decode with max_shape (maskrcnn-benchmark's decoding)
            bounds = bboxes.new_tensor([[w, h, w, h] for h, w in (meta['img_shape'][:2] for meta in batch_img_metas)])
            bboxes = torch.minimum(bboxes.clamp(min=0), bounds[:, None, :])
        valid = scores >= 0
        min_bbox_size = cfg.get('min_bbox_size', -1)
        if min_bbox_size >= 0 and not rescale:  # mmdet filters after rescaling: then _bbox_post_process does
            valid = valid & (bboxes[..., 2] - bboxes[..., 0] > min_bbox_size) & \
                (bboxes[..., 3] - bboxes[..., 1] > min_bbox_size)

        # the candidates of every image in one flat list, image by image and in the order of index
        if len(batch_img_metas) == 1:  # no host synchronisation for the split (and none frozen while tracing)
            keep = valid[0].nonzero(as_tuple=True)[0]
            bboxes, scores, labels, counts = bboxes[0, keep], scores[0, keep], labels[0, keep], None
        else:
            image_index, keep = valid.nonzero(as_tuple=True)
            bboxes, scores, labels = bboxes[image_index, keep], scores[image_index, keep], labels[image_index, keep]
            counts = valid.sum(1).tolist()
        if cfg.get('score_sqrt', True):
            scores = scores.sqrt()
        per_image = zip(bboxes.split(counts), scores.split(counts), labels.split(counts)) if counts else \
            [(bboxes, scores, labels)]
        results_list = []
        for (image_bboxes, image_scores, image_labels), img_meta in zip(per_image, batch_img_metas):
            if rescale or tracing.is_tracing():
                results = self._bbox_post_process(
                    InstanceData(bboxes=image_bboxes, scores=image_scores, labels=image_labels), cfg,
                    rescale=rescale, with_nms=with_nms, img_meta=img_meta)
            elif with_nms and image_scores.numel() > 0:  # mmdet's _bbox_post_process after its (done) size filter
                det_bboxes, keep = batched_nms(image_bboxes, image_scores, image_labels, cfg.nms)
                cap = cap_detections(det_bboxes[:, -1], cfg.max_per_img, cfg.get('keep_score_ties', True))
                keep = keep[cap]
                results = InstanceData(bboxes=image_bboxes[keep], scores=det_bboxes[cap, -1],
                                       labels=image_labels[keep])
            else:
                results = InstanceData(bboxes=image_bboxes, scores=image_scores, labels=image_labels)
            results_list.append(results)
        return results_list

    def select_candidates(self, cls_scores: List[Tensor], score_factors: List[Tensor],
                          cfg: ConfigDict) -> Tuple[Tensor, Tensor]:
        """Steps 1-2 of the class docstring for a batch: ``(scores [B, K], index [B, K])``, per image the best
        ``nms_pre`` (location, class) pairs of each level by ``cls * ctr``, level after level, each level's by
        decreasing score; ``index`` counts ``location * C + class`` over the levels' locations in order (row-major
        within a level). Pairs with ``cls <= score_thr`` have score -1 (they fill a level's top-k when it has
        fewer than ``nms_pre`` candidates, and are dropped afterwards): one top-k per level and one selection at
        the end replace a boolean index per level (a host synchronisation each).

        Decoding runs in float32 whatever the network's precision (no-op in fp32; a half-precision model would
        otherwise round box coordinates to 1 px above 1024 and give NMS half boxes)."""
        num_images, num_classes = cls_scores[0].shape[0], self.cls_out_channels
        cls = torch.cat([c.flatten(2) for c in cls_scores], 2).detach().float().sigmoid()  # [B, C, N]
        ctr = torch.cat([c.flatten(2) for c in score_factors], 2).detach().float().sigmoid()  # [B, 1, N]
        score_thr = cfg.get('score_thr', 0.05)
        scores = torch.where(cls > score_thr, cls * ctr, -1.0).transpose(1, 2).reshape(num_images, -1)
        nms_pre = cfg.get('nms_pre', -1)
        level_scores, level_index = [], []
        offset = 0
        for level in scores.split([c.shape[2] * c.shape[3] * num_classes for c in cls_scores], 1):
            top_scores, top_index = level.topk(topk_count(level, nms_pre), dim=1)
            level_scores.append(top_scores)
            level_index.append(top_index + offset)
            offset = offset + level.shape[1]
        return torch.cat(level_scores, 1), torch.cat(level_index, 1)

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: Optional[ConfigDict] = None,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """mmdet's per-image entry point (``[C, H, W]`` levels of one image): :meth:`predict_by_feat` of a batch of
        one (the points are those of the levels' sizes, ``mlvl_priors`` is not read)."""
        return self.predict_by_feat([c[None] for c in cls_score_list], [b[None] for b in bbox_pred_list],
                                    [s[None] for s in score_factor_list], [img_meta], cfg, rescale, with_nms)[0]

    def _bbox_post_process(self, results: InstanceData, cfg: ConfigDict, rescale: bool = False,
                           with_nms: bool = True, img_meta: Optional[dict] = None) -> InstanceData:
        """mmdet's, with the cap of :func:`cap_detections` (score ties of the last kept box kept), except while
        tracing (ONNX export), where mmdet's Python branches on the data (NMS skipped when no box is left; the
        small-box filter skipped when every box passes) would be frozen at the traced input: then the filter and the
        NMS (:func:`batched_nms_traceable`) always run, which gives the same results (NMS of no box is no box).
        ``results``: ``bboxes [n, 4], scores [n], labels [n]`` -> the same fields after NMS and ``max_per_img``."""
        keep_ties = cfg.get('keep_score_ties', True)
        if not tracing.is_tracing():
            if not (with_nms and keep_ties and cfg.max_per_img >= 0):
                return super()._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms,
                                                  img_meta=img_meta)
            uncapped = ConfigDict(cfg, max_per_img=max(len(results), cfg.max_per_img))  # mmdet caps after NMS
            results = super()._bbox_post_process(results, uncapped, rescale=rescale, with_nms=with_nms,
                                                 img_meta=img_meta)
            return results[cap_detections(results.scores, cfg.max_per_img, keep_ties)]
        if rescale or not with_nms or hasattr(results, 'score_factors'):
            raise NotImplementedError('CenterMaskFCOSHead: tracing supports rescale=False, with_nms=True only')
        if cfg.get('min_bbox_size', -1) >= 0:
            w, h = get_box_wh(results.bboxes)
            results = results[(w > cfg.min_bbox_size) & (h > cfg.min_bbox_size)]
        det_bboxes, keep_idxs = batched_nms_traceable(results.bboxes, results.scores, results.labels, cfg.nms)
        results = results[keep_idxs]
        results.scores = det_bboxes[:, -1]
        return results[cap_detections(results.scores, cfg.max_per_img, keep_ties)]
