"""CenterMask detector: FCOS (anchor-free, one stage) + a SAG-Mask RoI branch on its detections (ref §3-§6)."""
import warnings
from typing import Dict, Optional, Tuple, Union

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from torch import Tensor

from .config_checks import check_centermask_components, propagate_num_classes

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

    ``train_cfg``: ``rpn_proposal`` (how FCOS decodes the RoIs of the mask branch in training: <= 100 per image)
    and ``rcnn`` (assigner, sampler, mask size). ``test_cfg``: ``rpn`` (FCOS decoding at test: 50 per image) and
    ``rcnn`` (mask threshold). The ``rpn`` names follow mmdet's two-stage configs.

    * ``loss``: FCOS losses + ``loss_mask`` + ``loss_mask_iou`` on FCOS's own (detached) detections.
    * ``predict``: FCOS boxes, then masks and ``mask_scores``; ``pred_instances`` has ``bboxes, labels, scores,
      masks, mask_scores``.
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
      fails (:func:`.config_checks.propagate_num_classes`). Without it the heads keep their own values.
    * ``__init__`` checks that the built components fit together (neck vs backbone channels, FCOS and RoI-extractor
      strides vs the neck levels, one ``num_classes``): :mod:`.config_checks`.
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
            raise ValueError("CenterMask needs train_cfg=dict(rpn_proposal=..., rcnn=...), got " + repr(train_cfg))
        if num_classes is not None:
            bbox_head, roi_head = propagate_num_classes(num_classes, bbox_head, roi_head)
        self.num_classes = num_classes
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=None,
                         test_cfg=test_cfg['rpn'], data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        roi_head = roi_head.copy()
        roi_head.update(train_cfg=train_cfg['rcnn'] if train_cfg is not None else None, test_cfg=test_cfg['rcnn'])
        self.roi_head = MODELS.build(roi_head)
        check_centermask_components(self.backbone, self.neck, self.bbox_head, self.roi_head)
        self.nonfinite_loss = nonfinite_loss

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

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList, rescale: bool = True) -> SampleList:
        x = self.extract_feat(batch_inputs)
        results_list = self.bbox_head.predict(x, batch_data_samples, rescale=False)
        results_list = self.roi_head.predict(x, results_list, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> tuple:
        x = self.extract_feat(batch_inputs)
        outs = self.bbox_head.forward(x)
        batch_img_metas = [data_samples.metainfo for data_samples in batch_data_samples]
        results_list = self.bbox_head.predict_by_feat(*outs, batch_img_metas=batch_img_metas, rescale=False)
        return outs + self.roi_head.forward(x, results_list, batch_data_samples)
