"""Cross-component checks of a CenterMask model, run when the detector is built.

Each component validates its own options when it is built (e.g. ``VoVNet`` its ``arch`` and ``out_indices``); what
no single component can see is whether they fit together. :func:`check_centermask_components` checks, on the built
backbone, neck, FCOS head and RoI head:

* the neck's ``in_channels`` are the channels of the backbone outputs (``out_indices``);
* the FCOS head's ``strides`` are the strides of the neck outputs, and its ``in_channels`` the neck's
  ``out_channels``;
* the mask RoI extractor pools neck levels that exist: its ``featmap_strides`` are the first neck levels (the RoI
  head hands it ``x[:len(featmap_strides)]``), and its ``out_channels`` are the neck's;
* the FCOS head, the mask head and the MaskIoU head have the same ``num_classes`` (a class-agnostic mask head is
  exempt from the mask-head part).

Before anything is built, :func:`check_box_stage` checks that the ``bbox_head`` can serve as CenterMask's box stage
(an mmdet dense head with class-labelled boxes, and its training config where it needs one).

Every error is a ``ValueError`` naming the offending config keys (``model.neck.in_channels``...) with the values
found and the values expected. A backbone or neck whose outputs cannot be read from its attributes (neither
``out_channels``/``out_strides`` like ``VoVNet`` nor mmdet's ``ResNet`` layout; a neck without FPN's attributes)
skips the checks that need it.
"""
import copy
import math
from typing import List, Optional, Sequence, Tuple

from mmdet.models.dense_heads import AnchorHead, RepPointsHead, RPNHead, YOLOXHead
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.registry import MODELS
from torch import nn

#: mmdet dense heads that build their target assigner from ``train_cfg`` (CenterMask: ``model.train_cfg.rpn``) and
#: cannot compute a loss without it; the AnchorHead family covers ATSS, GFL, TOOD, RetinaNet, PAA, DDOD, RTMDet...
HEADS_NEEDING_TRAIN_CFG = (AnchorHead, RepPointsHead, YOLOXHead)


def _backbone_outputs(backbone: nn.Module) -> Optional[Tuple[List[int], List[int]]]:
    """(channels, strides) of the backbone's outputs, or None when they cannot be read from its attributes."""
    if hasattr(backbone, 'out_channels') and hasattr(backbone, 'out_strides'):  # VoVNet
        return list(backbone.out_channels), list(backbone.out_strides)
    if all(hasattr(backbone, k) for k in ('base_channels', 'block', 'strides', 'out_indices')):  # mmdet's ResNet
        channels = [backbone.base_channels * 2**i * backbone.block.expansion for i in backbone.out_indices]
        strides = [4 * math.prod(backbone.strides[:i + 1]) for i in backbone.out_indices]
        return channels, strides
    return None


def _describe_backbone(backbone: nn.Module) -> str:
    if hasattr(backbone, 'arch'):
        return f"{type(backbone).__name__} arch={backbone.arch!r} out_indices={tuple(backbone.out_indices)}"
    if hasattr(backbone, 'depth'):
        return f'{type(backbone).__name__} depth={backbone.depth} out_indices={tuple(backbone.out_indices)}'
    return type(backbone).__name__


def _neck_strides(neck: nn.Module, backbone_strides: Sequence[int]) -> Optional[List[int]]:
    """Strides of the neck outputs (FPN: the used backbone levels, then extra levels each halving the size)."""
    if not all(hasattr(neck, k) for k in ('start_level', 'backbone_end_level', 'num_outs')):
        return None
    used = list(backbone_strides[neck.start_level:neck.backbone_end_level])
    if not used:
        return None
    while len(used) < neck.num_outs:
        used.append(used[-1] * 2)
    return used[:neck.num_outs]


def _fail(problem: str, expected: str) -> None:
    raise ValueError(f'CenterMask config: {problem}; expected {expected}')


def check_neck(backbone: nn.Module, neck: nn.Module) -> Optional[List[int]]:
    """Check ``neck.in_channels`` against the backbone outputs; return the neck's output strides (or None)."""
    outputs = _backbone_outputs(backbone)
    if outputs is None:
        return None
    channels, strides = outputs
    if hasattr(neck, 'in_channels') and list(neck.in_channels) != channels:
        _fail(f'model.neck.in_channels={list(neck.in_channels)} do not match the output channels {channels} of the '
              f'backbone ({_describe_backbone(backbone)})', f'model.neck.in_channels={channels}')
    return _neck_strides(neck, strides)


def check_bbox_head(neck: nn.Module, neck_strides: Optional[List[int]], bbox_head: nn.Module) -> None:
    """Check the FCOS head's strides and input channels against the neck outputs."""
    head_strides = [s[0] if isinstance(s, (tuple, list)) else s for s in getattr(bbox_head, 'strides', [])]
    if neck_strides is not None and head_strides and head_strides != neck_strides:
        _fail(f'model.bbox_head.strides={head_strides} are not the strides {neck_strides} of the neck outputs '
              f'(model.neck num_outs={neck.num_outs}, start_level={neck.start_level})',
              f'model.bbox_head.strides={neck_strides} (one per neck output)')
    neck_out = getattr(neck, 'out_channels', None)
    if neck_out is not None and getattr(bbox_head, 'in_channels', neck_out) != neck_out:
        _fail(f'model.bbox_head.in_channels={bbox_head.in_channels} differs from model.neck.out_channels={neck_out}',
              f'model.bbox_head.in_channels={neck_out}')


def check_box_stage(bbox_head: dict, train_cfg: Optional[dict]) -> None:
    """Refuse, before it is built, a ``model.bbox_head`` config that cannot serve as CenterMask's box stage.

    The box stage must be an mmdet :class:`BaseDenseHead` (its ``loss_and_predict`` gives the losses and the boxes
    of each image the mask branch trains on) that labels its boxes with classes (not mmdet's class-agnostic
    ``RPNHead``: the mask and MaskIoU heads are class-specific). A head of :data:`HEADS_NEEDING_TRAIN_CFG` needs
    ``model.train_cfg.rpn`` (its assigner...) when the model has a training config. An unknown ``type`` is left
    to the registry's own error.
    """
    head_type = bbox_head.get('type')
    head_cls = head_type if isinstance(head_type, type) else MODELS.get(head_type)
    if head_cls is None:
        return
    name = head_cls.__name__
    suggestion = 'e.g. CenterMaskFCOSHead (the reference), FCOSHead, ATSSHead, GFLHead, TOODHead or RetinaHead'
    if not issubclass(head_cls, BaseDenseHead):
        _fail(f'model.bbox_head.type={name} is not an mmdet dense head (BaseDenseHead): the box stage must give '
              f'the losses and the class-labelled boxes of each image through loss_and_predict / predict_by_feat',
              f'a dense head, {suggestion}')
    if issubclass(head_cls, RPNHead):
        _fail(f'model.bbox_head.type={name} proposes class-agnostic boxes (label 0 for all), but the mask and '
              f'MaskIoU heads need the class of each box', f'a dense head that classifies, {suggestion}')
    if issubclass(head_cls, HEADS_NEEDING_TRAIN_CFG) and train_cfg is not None and 'rpn' not in train_cfg:
        _fail(f'model.bbox_head.type={name} builds its training target assigner from its train_cfg, which '
              f'CenterMask takes from model.train_cfg.rpn, and model.train_cfg has no rpn',
              f"model.train_cfg.rpn = the train_cfg of mmdet's {name} configs, e.g. for ATSS "
              f"dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False)")


def check_roi_extractor(neck: nn.Module, neck_strides: Optional[List[int]], extractor: nn.Module) -> None:
    """Check that the mask RoI extractor pools neck levels that exist, with the neck's channels."""
    strides = list(extractor.featmap_strides)
    key = 'model.roi_head.mask_roi_extractor'
    if neck_strides is not None and strides != neck_strides[:len(strides)]:
        _fail(f'{key}.featmap_strides={strides} are not neck levels: the neck produces strides {neck_strides} and '
              f'the extractor pools the first len(featmap_strides) of them',
              f'{key}.featmap_strides to be a prefix of {neck_strides}, e.g. {neck_strides[:len(strides)]}')
    neck_out = getattr(neck, 'out_channels', None)
    if neck_out is not None and extractor.out_channels != neck_out:
        _fail(f'{key}.out_channels={extractor.out_channels} differs from model.neck.out_channels={neck_out}',
              f'{key}.out_channels={neck_out}')


def check_num_classes(bbox_head: nn.Module, roi_head: nn.Module) -> None:
    """The FCOS head, the mask head (unless class-agnostic) and the MaskIoU head must agree on num_classes."""
    expected = bbox_head.num_classes
    found = {'model.bbox_head.num_classes': expected}
    mask_head = roi_head.mask_head
    if not getattr(mask_head, 'class_agnostic', False):
        found['model.roi_head.mask_head.num_classes'] = mask_head.num_classes
    mask_iou_head = getattr(roi_head, 'mask_iou_head', None)
    if mask_iou_head is not None:
        found['model.roi_head.mask_iou_head.num_classes'] = mask_iou_head.num_classes
    if any(v != expected for v in found.values()):
        listed = ', '.join(f'{k}={v}' for k, v in found.items())
        _fail(f'the heads disagree on the number of classes: {listed}',
              f'every num_classes = {expected} (the FCOS head\'s) or all set to the dataset\'s class count')


def propagate_num_classes(num_classes: int, bbox_head: dict, roi_head: dict) -> Tuple[dict, dict]:
    """Copies of the FCOS head and RoI head configs with ``num_classes`` (``model.num_classes``, the one place for
    the class count) set in the FCOS head, the mask head and the MaskIoU head.

    A head config that already sets a different ``num_classes`` fails with every head's value listed (a class-agnostic
    mask head keeps its own). Setting it in a head as well is allowed only with the same value.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        _fail(f'invalid model.num_classes={num_classes!r}', 'a positive int (the number of dataset classes)')
    bbox_head, roi_head = copy.deepcopy(bbox_head), copy.deepcopy(roi_head)
    heads = {'model.bbox_head': bbox_head, 'model.roi_head.mask_head': roi_head.get('mask_head'),
             'model.roi_head.mask_iou_head': roi_head.get('mask_iou_head')}
    found, wrong = {}, False
    for key, head in heads.items():
        if head is None or (key.endswith('.mask_head') and head.get('class_agnostic', False)):
            continue
        value = head.get('num_classes', num_classes)
        found[f'{key}.num_classes'] = value
        wrong = wrong or value != num_classes
        head['num_classes'] = value
    if wrong:
        listed = ', '.join(f'{k}={v}' for k, v in found.items())
        _fail(f'the heads disagree with model.num_classes={num_classes}: {listed}',
              f'every num_classes = {num_classes} (model.num_classes); set the class count only in '
              f'model.num_classes and remove it from the heads')
    return bbox_head, roi_head


def check_centermask_components(backbone: nn.Module, neck: nn.Module, bbox_head: nn.Module,
                                roi_head: nn.Module) -> None:
    """Run every cross-component check on the built components of a CenterMask model (see the module doc)."""
    neck_strides = check_neck(backbone, neck)
    check_bbox_head(neck, neck_strides, bbox_head)
    check_roi_extractor(neck, neck_strides, roi_head.mask_roi_extractor)
    check_num_classes(bbox_head, roi_head)
