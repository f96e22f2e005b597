"""PointRend's point-based mask refinement (mmdet's ``PointRendRoIHead`` and ``MaskPointHead``) on CenterMask's
SAG-Mask head."""
from typing import List, Tuple

import torch
from mmdet.models.roi_heads import PointRendRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList
from torch import Tensor

from .centermask_roi_head import CenterMaskRoIHead

POINT_TRAIN_KEYS = ('num_points', 'oversample_ratio', 'importance_sample_ratio')
POINT_TEST_KEYS = ('subdivision_steps', 'subdivision_num_points', 'scale_factor')


@MODELS.register_module()
class PointRendCenterMaskRoIHead(CenterMaskRoIHead):
    """:class:`CenterMaskRoIHead` whose SAG-Mask logits (§4.1 of docs/reference.md) are PointRend's coarse mask,
    refined by mmdet's ``MaskPointHead`` (``point_head``) with mmdet's PointRend training and inference.

    mmdet's :class:`PointRendRoIHead` cannot be a base class: its ``__init__`` asserts a box head, which CenterMask
    does not have (the boxes come from FCOS), and its ``mask_loss`` / ``predict_mask`` have the box head's
    signatures. Its three steps that need no box head are taken as they are (class attributes below; they use only
    ``mask_roi_extractor``, ``point_head`` and ``train_cfg`` / ``test_cfg``):

    * ``_mask_point_loss`` (training): ``train_cfg.num_points`` points per positive RoI, chosen by uncertainty of
      the coarse logits of the GT class with ``oversample_ratio`` and ``importance_sample_ratio``; their point
      logits against the GT mask sampled at the same points of the unclipped RoI: ``loss_point``, added to
      :meth:`mask_loss`'s ``loss_mask`` and ``loss_mask_iou``;
    * ``_mask_point_forward_test`` (inference, :meth:`refine_mask_logits`): ``test_cfg.subdivision_steps`` times,
      the logits are upsampled bilinearly by ``test_cfg.scale_factor`` and the ``subdivision_num_points`` most
      uncertain points are replaced by the point head's logits; ``[N, C, S, S] -> [N, C, S * f**k, S * f**k]``,
      e.g. 28 -> 56 -> 112 for ``k = 2``, ``f = 2`` (a step is skipped, its upsampling kept, when the points cover
      the whole next grid, as mmdet does);
    * ``_get_fine_grained_point_feats``: the point features are bilinear samples of *every* level the mask branch
      pools (P3-P5, concatenated in the extractor's order), so ``point_head.in_channels`` is
      ``len(featmap_strides) x out_channels`` of the extractor (PointRend samples P2 only, which CenterMask's FPN
      does not produce).

    The MaskIoU head scores the coarse mask (§6: it takes the mask head's output); the refined logits are what is
    pasted (§4.5, any mask size). ``point_head.num_classes`` and ``class_agnostic`` are the mask head's (the coarse
    logits are the point head's input) and ``in_channels`` the extractor's as above; each is filled in when the
    config leaves it out and checked when it sets it. Memory: the refined logits keep every class, as in mmdet
    (``N x num_classes x 112 x 112`` float32 for 2 steps from 28).
    """

    _mask_point_loss = PointRendRoIHead._mask_point_loss
    _mask_point_forward_test = PointRendRoIHead._mask_point_forward_test
    _get_fine_grained_point_feats = PointRendRoIHead._get_fine_grained_point_feats

    def __init__(self, point_head: ConfigType, **kwargs):
        super().__init__(**kwargs)
        for cfg, keys, name in ((self.train_cfg, POINT_TRAIN_KEYS, 'train_cfg.rcnn'),
                                (self.test_cfg, POINT_TEST_KEYS, 'test_cfg.rcnn')):
            missing = [key for key in keys if cfg is not None and key not in cfg]
            if missing:
                raise ValueError(f'PointRendCenterMaskRoIHead: {name} lacks {missing} (PointRend needs {list(keys)})')
        point_head = dict(point_head)
        mask_head, extractor = self.mask_head, self.mask_roi_extractor
        expected = dict(num_classes=1 if mask_head.class_agnostic else mask_head.num_classes,
                        class_agnostic=mask_head.class_agnostic,
                        in_channels=extractor.out_channels * extractor.num_inputs)
        for key, value in expected.items():
            if point_head.setdefault(key, value) != value:
                raise ValueError(f'PointRendCenterMaskRoIHead: point_head.{key}={point_head[key]!r}, expected '
                                 f'{value!r} (from the mask head and the mask RoI extractor); leave it out')
        self.point_head = MODELS.build(point_head)

    def mask_loss(self, x: Tuple[Tensor], sampling_results: List[SamplingResult],
                  batch_gt_instances: InstanceList, batch_img_metas: List[dict]) -> dict:
        """``loss_mask``, ``loss_mask_iou`` (:class:`CenterMaskRoIHead`) and ``loss_point`` (PointRend, on the
        coarse logits of the positive RoIs; 0 without positives)."""
        losses, mask_preds = self.mask_loss_and_preds(x, sampling_results, batch_gt_instances, batch_img_metas)
        if mask_preds.shape[0] == 0:
            losses['loss_point'] = mask_preds.sum() * 0
        else:
            losses['loss_point'] = self._mask_point_loss(x, sampling_results, mask_preds,
                                                         batch_gt_instances)['loss_point']
        return losses

    def refine_mask_logits(self, x: Tuple[Tensor], mask_rois: Tensor, labels: Tensor, mask_preds: Tensor) -> Tensor:
        """Subdivision inference: coarse ``mask_preds [N, C, S, S]`` of the ``mask_rois [N, 5]`` (sorted by image,
        as ``bbox2roi`` gives them) with predicted ``labels [N]`` -> refined ``[N, C, S * f**k, S * f**k]`` logits
        (``f = test_cfg.scale_factor``, ``k = test_cfg.subdivision_steps``)."""
        return self._mask_point_forward_test(x, mask_rois, labels, mask_preds)

    def mask_logits_and_scores(self, x: Tuple[Tensor], mask_rois: Tensor, results_list: InstanceList,
                               batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor]:
        """The refined mask logits (:meth:`refine_mask_logits`) and the mask scores of the coarse masks."""
        mask_preds, mask_scores = super().mask_logits_and_scores(x, mask_rois, results_list, batch_img_metas)
        labels = torch.cat([res.labels for res in results_list])
        return self.refine_mask_logits(x, mask_rois, labels, mask_preds), mask_scores

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None) -> tuple:
        """Tensor mode (FLOP counting): :class:`CenterMaskRoIHead`'s outputs with the mask logits refined, so that
        the point head's subdivision steps are counted."""
        outs = super().forward(x, rpn_results_list, batch_data_samples)
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        labels = torch.cat([res.labels for res in rpn_results_list])
        return (self.refine_mask_logits(x, rois, labels, outs[0]), ) + outs[1:]
