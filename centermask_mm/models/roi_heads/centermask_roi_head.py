"""The RoI side of CenterMask: mask and MaskIoU heads on FCOS's detections (ref §4.4, §4.5, §6)."""
import itertools
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import empty_instances, unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import InstanceList
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers import detectron2_box_scale, final_boxes, paste_masks_in_images
from ..utils.image_shapes import FeaturesWithImageShapes


@MODELS.register_module()
class CenterMaskRoIHead(StandardRoIHead):
    """Mask branch of CenterMask: no box head, boxes come from the FCOS head.

    Differences from mmdet's StandardRoIHead / MaskScoringRoIHead, which both assume a box head:

    * ``loss``: RoIs are FCOS's detached detections (<= 100 per image) plus the GT boxes (the sampler's
      ``add_gt_as_proposals``), matched at IoU >= 0.5 and sampled (512, 25 % positive) by the configured
      assigner/sampler; only positives feed the mask head (``loss_mask``) and the MaskIoU head (``loss_mask_iou``).
      No positive RoI in the batch gives zero losses.
    * ``predict``: masks for the FCOS boxes; the MaskIoU prediction of the predicted class goes into
      ``mask_scores = scores * iou`` (centermask2), leaving the box ``scores`` untouched (mmdet's MaskIoUHead
      would overwrite them, which changes box AP).
    * the final post-processing is chosen by ``test_cfg.postprocess`` (:data:`POSTPROCESS_MODES`):

      - ``'detectron2'`` (centermask2, detectron2 v0.3 ``detector_postprocess``; ref §4.5, findings D2/D3): boxes
        are rescaled to the output image with detectron2's arithmetic (multiplied by ``output / input`` size in
        the boxes' float32, :func:`detectron2_box_scale`), clipped to it, boxes left empty by the clipping are
        dropped, and each mask (28x28; predicted on the unclipped box) is pasted into its *clipped* box;
      - ``'mmdet'`` (mmdet's FCNMaskHead, the default when the key is absent): boxes are divided by the
        ``scale_factor`` and stay unclipped, and masks are pasted into them.

      In both modes a box that does not overlap the output image at all is dropped before pasting (mmdet's CPU
      paste raises on such a box: "upper bound and lower bound inconsistent with step sign").
    * the mask RoI extractor gets the features with the image shapes (:class:`FeaturesWithImageShapes`), which
      ``ScaleAdaptiveRoIExtractor`` reads for Eq. 2 and mmdet's ``SingleRoIExtractor`` (the Mask R-CNN-rule
      ablation) ignores.
    """

    POSTPROCESS_MODES = ('detectron2', 'mmdet')

    def __init__(self, mask_iou_head: Optional[dict] = None, **kwargs):
        if kwargs.get('bbox_head') is not None:
            raise ValueError('CenterMaskRoIHead takes no bbox_head: the boxes come from the FCOS head')
        if kwargs.get('mask_roi_extractor') is None or kwargs.get('mask_head') is None:
            raise ValueError('CenterMaskRoIHead needs mask_roi_extractor and mask_head')
        test_cfg = kwargs.get('test_cfg') or {}
        if test_cfg.get('postprocess', 'mmdet') not in self.POSTPROCESS_MODES:
            raise ValueError(f"CenterMaskRoIHead: test_cfg.postprocess must be one of {self.POSTPROCESS_MODES}, "
                             f"got {test_cfg.get('postprocess')!r}")
        super().__init__(**kwargs)
        self.mask_iou_head = MODELS.build(mask_iou_head) if mask_iou_head is not None else None

    @property
    def with_mask_iou(self) -> bool:
        return self.mask_iou_head is not None

    def _mask_forward(self, x: Tuple[Tensor], rois: Tensor, batch_img_metas: List[dict] = None) -> dict:
        """``rois [N, 5]`` -> ``mask_preds [N, C, S, S]`` logits (``S``: the mask head's ``mask_size``, 28) and
        ``mask_feats [N, C_fpn, 14, 14]``."""
        feats = FeaturesWithImageShapes(x[:self.mask_roi_extractor.num_inputs],
                                        [meta['img_shape'] for meta in batch_img_metas])
        mask_feats = self.mask_roi_extractor(feats, rois)  # Eq. 2 reads the image sizes there, mmdet's rule does not
        return dict(mask_preds=self.mask_head(mask_feats), mask_feats=mask_feats)

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList) -> dict:
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, results in enumerate(rpn_results_list):
            proposals = results.clone()
            proposals.priors = proposals.pop('bboxes')
            assign_result = self.bbox_assigner.assign(proposals, batch_gt_instances[i],
                                                      batch_gt_instances_ignore[i])
            sampling_results.append(
                self.bbox_sampler.sample(assign_result, proposals, batch_gt_instances[i],
                                         feats=[lvl_feat[i][None] for lvl_feat in x]))
        return self.mask_loss(x, sampling_results, batch_gt_instances, batch_img_metas)

    def mask_loss(self, x: Tuple[Tensor], sampling_results: List[SamplingResult],
                  batch_gt_instances: InstanceList, batch_img_metas: List[dict]) -> dict:
        """Mask BCE (mmdet FCNMaskHead) and MaskIoU MSE (mmdet MaskIoUHead) on the positive RoIs."""
        return self.mask_loss_and_preds(x, sampling_results, batch_gt_instances, batch_img_metas)[0]

    def mask_loss_and_preds(self, x: Tuple[Tensor], sampling_results: List[SamplingResult],
                            batch_gt_instances: InstanceList, batch_img_metas: List[dict]) -> Tuple[dict, Tensor]:
        """The losses of :meth:`mask_loss` and the mask logits ``[num_pos, C, S, S]`` (``S = mask_size``) of the
        positive RoIs they were computed on, for a subclass that trains more on them (PointRend's point head)."""
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        mask_results = self._mask_forward(x, pos_rois, batch_img_metas)
        mask_loss_and_target = self.mask_head.loss_and_target(
            mask_preds=mask_results['mask_preds'], sampling_results=sampling_results,
            batch_gt_instances=batch_gt_instances, rcnn_train_cfg=self.train_cfg)
        losses = dict(mask_loss_and_target['loss_mask'])
        if self.with_mask_iou:
            pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
            index = torch.arange(pos_labels.numel(), device=pos_labels.device)
            pos_mask_pred = mask_results['mask_preds'][index, pos_labels]  # not detached, as the reference
            mask_iou_pred = self.mask_iou_head(mask_results['mask_feats'], pos_mask_pred)
            losses.update(self.mask_iou_head.loss_and_target(
                mask_iou_pred[index, pos_labels], pos_mask_pred, mask_loss_and_target['mask_targets'],
                sampling_results, batch_gt_instances, self.train_cfg))
        return losses, mask_results['mask_preds']

    def predict(self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList,
                rescale: bool = False) -> InstanceList:
        batch_img_metas = [data_samples.metainfo for data_samples in batch_data_samples]
        return self.predict_mask(x, batch_img_metas, rpn_results_list, rescale=rescale)

    def predict_mask(self, x: Tuple[Tensor], batch_img_metas: List[dict], results_list: InstanceList,
                     rescale: bool = False) -> InstanceList:
        """Add ``masks`` (bool ``[n, H, W]``, at ``ori_shape`` when ``rescale``, else at ``img_shape``) and
        ``mask_scores`` (``scores * MaskIoU[label]``); boxes are post-processed as ``test_cfg.postprocess`` says."""
        mask_rois = self.pooling_rois(bbox2roi([res.bboxes for res in results_list]), batch_img_metas)
        if mask_rois.shape[0] == 0:
            results_list = empty_instances(batch_img_metas, mask_rois.device, task_type='mask',
                                           instance_results=results_list,
                                           mask_thr_binary=self.test_cfg.mask_thr_binary)
            for results in results_list:
                results.mask_scores = results.scores
            return results_list

        mask_preds, mask_scores = self.mask_logits_and_scores(x, mask_rois, results_list, batch_img_metas)
        num_per_img = [len(res) for res in results_list]
        for results, scores in zip(results_list, mask_scores.split(num_per_img)):
            results.mask_scores = scores
        return self.paste_masks(mask_preds, results_list, batch_img_metas, rescale)

    def mask_logits_and_scores(self, x: Tuple[Tensor], mask_rois: Tensor, results_list: InstanceList,
                               batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor]:
        """Mask logits ``[N, C, S, S]`` (``S = mask_size``, 28) of the ``mask_rois [N, 5]`` (the boxes of
        ``results_list``, in order) and their ``mask_scores [N]`` (``scores * MaskIoU[label]``; the box scores
        without a MaskIoU head).

        The part of :meth:`predict_mask` before pasting; the ONNX export traces it (:mod:`centermask_mm.deployment`).
        """
        mask_results = self._mask_forward(x, mask_rois, batch_img_metas)
        mask_preds = mask_results['mask_preds']
        mask_scores = torch.cat([res.scores for res in results_list])
        if self.with_mask_iou:
            labels = torch.cat([res.labels for res in results_list])
            index = torch.arange(labels.numel(), device=labels.device)
            mask_iou = self.mask_iou_head(mask_results['mask_feats'], mask_preds[index, labels])[index, labels]
            mask_scores = mask_scores * mask_iou
        return mask_preds, mask_scores

    def mask_probs(self, mask_preds: Tensor, labels: Tensor) -> Tensor:
        """``mask_preds [N, C, S, S]`` logits -> ``[N, S, S]`` probabilities of each box's class (``labels [N]``;
        channel 0 for a class-agnostic head)."""
        if self.mask_head.class_agnostic:
            return mask_preds[:, 0].sigmoid()
        return mask_preds[torch.arange(labels.numel(), device=labels.device), labels].sigmoid()

    @staticmethod
    def pooling_rois(rois: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """The RoIs the mask branch pools: FCOS's boxes as they are (the reference pools the *unclipped* boxes, ref
        §3.5), made safe for RoIAlign: corners limited to one image size beyond each border (``[-w, 2w] x [-h, 2h]``
        of ``img_shape``) and never inverted (``x2 >= x1, y2 >= y1``).

        Boxes inside those limits, which is every box a FCOS head reaches unless a box regression exceeds the image
        size, are unchanged. Others (a replaced head, random or diverging weights) would crash mmcv's CPU RoIAlign
        or stall it: an inverted box is refused, a huge one makes it allocate a sampling grid proportional to the
        box area (the README's "Where the output can differ from centermask2" gives the measured cost;
        ``tools/analysis_tools/roi_align_far_boxes.py`` measures it). This is the one place where the pooled box
        can differ from the reference's, which pools the raw box. Without a host synchronisation; ``paste_masks``
        still drops the boxes that do not overlap the output image.
        """
        shapes = [meta['img_shape'] for meta in batch_img_metas]
        if any(isinstance(shape, Tensor) for shape in shapes):  # the ONNX export's img_shape input (h, w) [2]
            sizes = torch.stack([torch.as_tensor(shape[:2]).to(rois).flip(0) for shape in shapes])
        else:
            sizes = rois.new_tensor([[shape[1], shape[0]] for shape in shapes])
        size = sizes[rois[:, 0].long()].repeat(1, 2)
        boxes = torch.minimum(torch.maximum(rois[:, 1:], -size), 2 * size)
        return torch.cat([rois[:, :1], boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2])], dim=1)

    def paste_masks(self, mask_preds: Union[Tensor, Sequence[Tensor]], results_list: InstanceList,
                    batch_img_metas: List[dict], rescale: bool) -> InstanceList:
        """Final boxes and pasted masks (``test_cfg.postprocess``, see the class docstring).

        ``mask_preds``: ``[N, num_classes, S, S]`` logits (any ``S``: 28, 56, PointRend's refined 112...) for the
        boxes of all images in order (as :meth:`mask_logits_and_scores` gives them), or per image ``mask_preds[i]``
        ``[n_i, num_classes, S, S]`` for the boxes of ``results_list[i]`` (in the resized image's coordinates).
        The boxes are brought to the output image (``ori_shape`` when ``rescale``, else ``img_shape``) here and the
        masks of the predicted classes are pasted into them, all boxes of all images at once (:func:`final_boxes`
        with per-box image sizes, then :func:`paste_masks_in_images`: the values of mmdet's ``FCNMaskHead`` paste;
        the ONNX Runtime post-processing calls the same two functions). Two host synchronisations for the batch
        (the boxes kept, the paste's region sizes).
        """
        threshold = self.test_cfg.mask_thr_binary
        if threshold < 0:  # soft uint8 masks (mmdet's debugging output): mmdet's own paste, image by image
            if isinstance(mask_preds, Tensor):
                mask_preds = mask_preds.split([len(results) for results in results_list])
            return [self._paste_soft_masks(preds, results, meta, rescale)
                    for preds, results, meta in zip(mask_preds, results_list, batch_img_metas)]
        if isinstance(mask_preds, Tensor):
            all_preds = mask_preds
        else:
            all_preds = mask_preds[0] if len(mask_preds) == 1 else torch.cat(list(mask_preds))
        clip = self.test_cfg.get('postprocess', 'mmdet') == 'detectron2'
        out_sizes = [tuple(int(v) for v in (meta['ori_shape'] if rescale else meta['img_shape'])[:2])
                     for meta in batch_img_metas]
        # per image the rescale factors: divided by (mmdet) or multiplied by (detectron2), see final_boxes
        factors = [(detectron2_box_scale(meta) if clip else tuple(meta['scale_factor'][:2])) if rescale else None
                   for meta in batch_img_metas]
        if len(results_list) == 1:
            merged, image_index = results_list[0], None
            (out_h, out_w), scale = out_sizes[0], factors[0]
        else:
            merged = InstanceData.cat(results_list)
            # per image: output size, rescale factors, box count (one small host-to-device copy); per box: its image's
            per_image = merged.bboxes.new_tensor(
                [size + (factor if rescale else (1.0, 1.0)) + (len(results), )
                 for size, factor, results in zip(out_sizes, factors, results_list)])
            image_index = torch.arange(len(results_list), device=all_preds.device).repeat_interleave(
                per_image[:, 4].long(), output_size=len(merged))
            per_box = per_image[image_index]  # [N, 5]: out_h, out_w, w factor, h factor, count
            out_h, out_w, scale = per_box[:, 0], per_box[:, 1], per_box[:, 2:4] if rescale else None
        keep, boxes = final_boxes(merged.bboxes, out_h, out_w, None if clip else scale, clip,
                                  box_scale=scale if clip else None)
        probs = self.mask_probs(all_preds, merged.labels)[keep]  # the class first: no copy of [N, C, S, S]
        merged = merged[keep]
        merged.bboxes = boxes
        masks = paste_masks_in_images(probs, boxes, out_sizes, None if image_index is None else image_index[keep],
                                      threshold)
        if len(results_list) == 1:
            merged.masks = masks[0]
            return [merged]
        counts = [len(image_masks) for image_masks in masks]
        bounds = list(zip(itertools.accumulate([0] + counts), itertools.accumulate(counts)))
        # the fields split per image: one split per tensor field rather than a slice per field and image
        fields = {key: value.split(counts) if isinstance(value, Tensor) else [value[a:b] for a, b in bounds]
                  for key, value in merged.items()}
        return [InstanceData(metainfo=merged.metainfo, **{key: parts[i] for key, parts in fields.items()},
                             masks=image_masks) for i, image_masks in enumerate(masks)]

    def _paste_soft_masks(self, preds: Tensor, results: InstanceData, meta: dict, rescale: bool) -> InstanceData:
        out_h, out_w = (meta['ori_shape'] if rescale else meta['img_shape'])[:2]
        clip = self.test_cfg.get('postprocess', 'mmdet') == 'detectron2'
        factor = (detectron2_box_scale(meta) if clip else meta['scale_factor']) if rescale else None
        keep, boxes = final_boxes(results.bboxes, out_h, out_w, None if clip else factor, clip,
                                  box_scale=factor if clip else None)
        results = results[keep]
        results.bboxes = boxes
        meta = dict(meta, ori_shape=(out_h, out_w), scale_factor=(1.0, 1.0))
        return self.mask_head.predict_by_feat((preds[keep], ), [results], [meta], rcnn_test_cfg=self.test_cfg,
                                              rescale=True)[0]

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None) -> tuple:
        """Tensor mode (FLOP counting): mask logits, and MaskIoU predictions, of the given detections."""
        batch_img_metas = [data_samples.metainfo for data_samples in batch_data_samples]
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        mask_results = self._mask_forward(x, rois, batch_img_metas)
        outs = (mask_results['mask_preds'], )
        if self.with_mask_iou:
            labels = torch.cat([res.labels for res in rpn_results_list])
            index = torch.arange(labels.numel(), device=labels.device)
            outs += (self.mask_iou_head(mask_results['mask_feats'], mask_results['mask_preds'][index, labels]), )
        return outs
