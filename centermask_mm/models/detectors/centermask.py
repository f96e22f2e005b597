"""CenterMask detector: FCOS (anchor-free, one stage) + a SAG-Mask RoI branch on its detections (ref §3-§6)."""
import warnings
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from torch import Tensor

from ..dense_heads.centermask_fcos_head import CenterMaskFCOSHead
from ..utils.config_checks import check_box_stage, check_centermask_components, propagate_num_classes

#: valid values of ``CenterMask(nonfinite_loss=...)``
NONFINITE_LOSS_MODES = ('raise', 'skip')


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite; raised before the optimizer step, so no weight is touched."""


@MODELS.register_module()
class CenterMask(SingleStageDetector):
    """CenterMask / CenterMask-Lite.

    A :class:`SingleStageDetector` (class-aware FCOS ``bbox_head``, so FCOS checkpoints load as they are) with an
    extra ``roi_head`` (:class:`CenterMaskRoIHead`). mmdet's TwoStageDetector does not fit: it forces its RPN to one
    class and zeroes the GT labels.

    ``train_cfg``: ``rpn_proposal`` (how FCOS decodes the RoIs of the mask branch in training: <= 100 per image),
    ``rcnn`` (assigner, sampler, mask size) and, optionally, ``rpn``: the box stage's own training config, handed
    to ``bbox_head`` as its ``train_cfg`` the way mmdet's two-stage detectors hand ``train_cfg.rpn`` to their RPN
    (FCOS needs none; mmdet's anchor-based heads, e.g. ATSS, GFL, TOOD, RetinaNet, PAA, read their assigner from
    it). ``test_cfg``: ``rpn`` (FCOS decoding at test: 50 per image) and ``rcnn`` (mask threshold). The ``rpn``
    names follow mmdet's two-stage configs.

    The box stage (``bbox_head``) may be any mmdet dense head that detects class-labelled boxes
    (:func:`..utils.config_checks.check_box_stage` refuses the others at build, with the reason).

    * ``loss``: FCOS losses + ``loss_mask`` + ``loss_mask_iou`` on FCOS's own (detached) detections.
    * ``predict``: :meth:`predict_fixed_shape` (backbone, neck, FCOS towers, FCOS candidate selection: the part
      whose shapes depend only on the input size), then the decoding of the candidates (NMS), then masks and
      ``mask_scores``; ``pred_instances`` has ``bboxes, labels, scores, masks, mask_scores``.
    * ``fixed_shape_runner`` (attribute, ``None`` when built): what ``predict`` calls instead of
      :meth:`predict_fixed_shape` when set, a callable with its arguments and results: the inference speed-ups
      set it (a CUDA-graph replay, :func:`~centermask_mm.engine.capture_cuda_graphs`; ``torch.compile``,
      :func:`~centermask_mm.engine.inference_speedup.compile_fixed_shape`). Not used in training mode.
    * ``_forward`` (tensor mode) also runs the mask branch on the decoded boxes, so FLOP counting includes it.
    * ``nonfinite_loss='raise'`` (default): ``parse_losses`` raises :class:`NonFiniteLossError` naming the
      iteration and every non-finite loss, before the backward pass and the optimizer step, so a diverging run
      stops with its weights and last checkpoint intact instead of writing NaN weights.
    * ``nonfinite_loss='skip'``: ``train_step`` (overridden for this only) drops such a step instead: no backward,
      no optimizer step, parameters, buffers (BN running statistics, updated by the forward pass) and optimizer
      state as before the step, a ``UserWarning`` naming the iteration and the non-finite losses, and nothing
      logged for it. The loop still counts the iteration (LR schedule and checkpoints go on). With gradient
      accumulation (``accumulative_counts``) a skipped step does not count towards the accumulation.
    * ``num_classes`` (optional, the one place for the class count): written into the FCOS head, the mask head
      and the MaskIoU head configs before they are built; a head config that sets a different ``num_classes``
      fails (:func:`..utils.config_checks.propagate_num_classes`). Without it the heads keep their own values.
    * ``__init__`` checks that the built components fit together (neck vs backbone channels, FCOS and RoI-extractor
      strides vs the neck levels, one ``num_classes``): :mod:`..utils.config_checks`.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 roi_head: ConfigType,
                 num_classes: Optional[int] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 nonfinite_loss: str = 'raise') -> None:
        if nonfinite_loss not in NONFINITE_LOSS_MODES:
            raise ValueError(f'CenterMask: nonfinite_loss must be one of {NONFINITE_LOSS_MODES}, '
                             f'got {nonfinite_loss!r}')
        if test_cfg is None or 'rpn' not in test_cfg or 'rcnn' not in test_cfg:
            raise ValueError("CenterMask needs test_cfg=dict(rpn=..., rcnn=...), got " + repr(test_cfg))
        if train_cfg is not None and ('rpn_proposal' not in train_cfg or 'rcnn' not in train_cfg):
            raise ValueError('CenterMask needs train_cfg=dict(rpn_proposal=..., rcnn=...) (and optionally rpn=..., '
                             f'the box stage\'s own train_cfg), got {train_cfg!r}')
        check_box_stage(bbox_head, train_cfg)
        if num_classes is not None:
            bbox_head, roi_head = propagate_num_classes(num_classes, bbox_head, roi_head)
        self.num_classes = num_classes
        box_stage_train_cfg = train_cfg.get('rpn') if train_cfg is not None else None
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=box_stage_train_cfg,
                         test_cfg=test_cfg['rpn'], data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        roi_head = roi_head.copy()
        roi_head.update(train_cfg=train_cfg['rcnn'] if train_cfg is not None else None, test_cfg=test_cfg['rcnn'])
        self.roi_head = MODELS.build(roi_head)
        check_centermask_components(self.backbone, self.neck, self.bbox_head, self.roi_head)
        self.nonfinite_loss = nonfinite_loss
        self.fixed_shape_runner: Optional[Callable] = None

    @staticmethod
    def _nonfinite_report(loss: Tensor, log_vars: Dict[str, Tensor]) -> Tuple[str, dict]:
        """(where, {loss name: value}) of a non-finite total ``loss``: the iteration and the non-finite losses."""
        bad = {k: v.item() for k, v in log_vars.items() if k.startswith('loss_') and not torch.isfinite(v)}
        iteration = MessageHub.get_current_instance().get_info('iter')
        where = f'iteration {iteration}' if iteration is not None else 'this step'
        return where, bad or {'loss': loss.item()}

    def parse_losses(self, losses: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, Tensor]]:
        loss, log_vars = super().parse_losses(losses)
        if not torch.isfinite(loss):
            where, bad = self._nonfinite_report(loss, log_vars)
            raise NonFiniteLossError(f'CenterMask: non-finite loss at {where}: {bad}; '
                                     'stopped before the optimizer step (weights unchanged). Common causes: '
                                     'frozen norms without pretrained weights, a learning rate too high for the '
                                     'batch size (see auto_scale_lr), broken annotations. '
                                     "model.nonfinite_loss='skip' skips such steps instead.")
        return loss, log_vars

    def train_step(self, data: Union[dict, tuple, list], optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """mmengine's ``BaseModel.train_step``; with ``nonfinite_loss='skip'`` a step whose loss is not finite is
        dropped (see the class docstring) and an empty dict is returned (nothing to log)."""
        if self.nonfinite_loss == 'raise':
            return super().train_step(data, optim_wrapper)
        buffers = {name: buf.detach().clone() for name, buf in self.named_buffers()}
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        loss, log_vars = super().parse_losses(losses)  # BaseModel's: no finiteness check
        if torch.isfinite(loss):
            optim_wrapper.update_params(loss)
            return log_vars
        where, bad = self._nonfinite_report(loss, log_vars)
        with torch.no_grad():
            for name, buf in self.named_buffers():
                buf.copy_(buffers[name])
        warnings.warn(f'CenterMask: non-finite loss at {where}: {bad}; skipped this step (no backward, no '
                      "optimizer step, weights unchanged) as model.nonfinite_loss='skip' asks", UserWarning)
        return {}

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        x = self.extract_feat(batch_inputs)
        losses, proposals = self.bbox_head.loss_and_predict(
            x, batch_data_samples, proposal_cfg=self.train_cfg['rpn_proposal'])
        losses.update(self.roi_head.loss(x, proposals, batch_data_samples))
        return losses

    def predict_fixed_shape(self, batch_inputs: Tensor, cfg: OptConfigType = None
                            ) -> Tuple[Tuple[Tensor, ...], Tuple[List[Tensor], ...], Optional[Tuple[Tensor, Tensor]]]:
        """The part of :meth:`predict` whose shapes depend only on the input size: backbone and neck
        (``extract_feat``), the FCOS towers (``bbox_head``'s forward) and, for a :class:`CenterMaskFCOSHead`, its
        candidate selection (score threshold, one top-k per level: ``select_candidates``). No host synchronisation
        and no shape that depends on the data: what a CUDA graph records and ``torch.compile`` compiles
        (``fixed_shape_runner``), and what the ONNX export traces first.

        Args:
            batch_inputs: ``[B, 3, H, W]``, pre-processed (normalised, padded).
            cfg: the FCOS test cfg whose ``score_thr`` and ``nms_pre`` the selection reads; ``None``: the head's
                ``test_cfg``. ``predict`` passes it, so that a runner keyed on its arguments sees the current values.

        Returns:
            ``(feats, head_outs, candidates)``:

            * ``feats``: the neck outputs, one ``[B, C, ceil(H / s), ceil(W / s)]`` per level (stride ``s``);
            * ``head_outs``: the head's forward, ``(cls_scores, bbox_preds, centernesses)``, per level
              ``[B, num_classes, H_l, W_l]``, ``[B, 4, H_l, W_l]``, ``[B, 1, H_l, W_l]``;
            * ``candidates``: ``(scores [B, K], index [B, K])`` of ``select_candidates`` (``K``: the sum over the
              levels of ``min(nms_pre, H_l * W_l * num_classes)``), to be passed to the head's ``predict_by_feat``;
              ``None`` for another dense head (e.g. mmdet's ``FCOSHead``), whose ``predict_by_feat`` selects itself.
        """
        feats = self.extract_feat(batch_inputs)
        head_outs = self.bbox_head(feats)
        if not isinstance(self.bbox_head, CenterMaskFCOSHead):
            return feats, head_outs, None
        cfg = self.bbox_head.test_cfg if cfg is None else cfg
        return feats, head_outs, self.bbox_head.select_candidates(head_outs[0], head_outs[2], cfg)

    def _predict_boxes(self, head_outs: tuple, candidates: Optional[Tuple[Tensor, Tensor]],
                       batch_img_metas: List[dict]) -> list:
        """The FCOS detections (unrescaled) from :meth:`predict_fixed_shape`'s maps and candidates."""
        if candidates is None:
            return self.bbox_head.predict_by_feat(*head_outs, batch_img_metas=batch_img_metas, rescale=False)
        return self.bbox_head.predict_by_feat(*head_outs, batch_img_metas=batch_img_metas, rescale=False,
                                              candidates=candidates)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList, rescale: bool = True) -> SampleList:
        fixed_shape = self.predict_fixed_shape
        if self.fixed_shape_runner is not None and not self.training:
            fixed_shape = self.fixed_shape_runner  # its outputs may be overwritten by its next call: used here only
        x, head_outs, candidates = fixed_shape(batch_inputs, self.bbox_head.test_cfg)
        batch_img_metas = [data_samples.metainfo for data_samples in batch_data_samples]
        results_list = self._predict_boxes(head_outs, candidates, batch_img_metas)
        results_list = self.roi_head.predict(x, results_list, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> tuple:
        x, outs, candidates = self.predict_fixed_shape(batch_inputs)
        batch_img_metas = [data_samples.metainfo for data_samples in batch_data_samples]
        results_list = self._predict_boxes(outs, candidates, batch_img_metas)
        return outs + self.roi_head.forward(x, results_list, batch_data_samples)
