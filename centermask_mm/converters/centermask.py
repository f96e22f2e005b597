"""Import whole CenterMask detectors: centermask2 (detectron2) and CenterMask (maskrcnn-benchmark) checkpoints.

Reference key layouts: ``docs/reference.md`` §8.1 and findings D1. Every source key
is mapped by exactly one rule of its layout's table (:data:`LAYOUTS`) onto a key of :class:`CenterMask`
(``backbone.*`` keys go through the VoVNet mapping of :mod:`centermask_mm.converters.vovnet`, which also finds the
backbone arch and its DCN stages, or the ResNet / ResNeXt one of :mod:`centermask_mm.converters.resnet`). Keys
that no rule maps are refused; :func:`check_against_model` then refuses model keys that the source does not cover
and shape mismatches. Files saved by detectron2 v0.1-v0.3 (centermask2's published models) also hold the input
normalisation (``pixel_mean``, ``pixel_std``): it is compared with the target config's ``data_preprocessor``
(:func:`check_normalization`) and dropped when they agree.

=========================  ==============================================  ====================================
ours                       centermask2 (detectron2)                        CenterMask (maskrcnn-benchmark)
=========================  ==============================================  ====================================
backbone.*                 backbone.bottom_up.<VoVNet / ResNet names>      backbone.body.<VoVNet / ResNet names>
neck.lateral_convs.i       backbone.fpn_lateral{3,4,5}                     backbone.fpn.fpn_inner{2,3,4}
neck.fpn_convs.0-2         backbone.fpn_output{3,4,5}                      backbone.fpn.fpn_layer{2,3,4}
neck.fpn_convs.3 / 4       backbone.top_block.p6 / p7                      backbone.fpn.top_blocks.p6 / p7
bbox_head.{cls,reg}_convs  proposal_generator.fcos_head.{cls,bbox}_tower   rpn.head.{cls,bbox}_tower
  .i.conv / .i.gn            .{3i} (conv) / .{3i+1} (GroupNorm)              (same positions)
bbox_head.conv_cls/reg     ...fcos_head.cls_logits / bbox_pred             rpn.head.cls_logits / bbox_pred
bbox_head.conv_centerness  ...fcos_head.ctrness                            rpn.head.centerness
bbox_head.scales.i.scale   ...fcos_head.scales.i.scale, shape (1,) -> ()   rpn.head.scales.i.scale
mask_head.convs.i.conv     roi_heads.mask_head.mask_fcn{i+1}               roi_heads.mask.feature_extractor.mask_fcn{i+1}
mask_head.spatial_att..    roi_heads.mask_head.spatialAtt.conv             roi_heads.mask.feature_extractor.spatialAtt.conv
mask_head.upsample         roi_heads.mask_head.deconv                      roi_heads.mask.predictor.conv5_mask
mask_head.conv_logits      roi_heads.mask_head.predictor                   roi_heads.mask.predictor.mask_fcn_logits (*)
mask_iou_head.convs.i      roi_heads.maskiou_head.maskiou_fcn{i+1}         roi_heads.maskiou.feature_extractor.maskiou_fcn{i+1}
mask_iou_head.fcs.0 / 1    roi_heads.maskiou_head.maskiou_fc1 / fc2        roi_heads.maskiou.feature_extractor.maskiou_fc1 / 2
mask_iou_head.fc_mask_iou  roi_heads.maskiou_head.maskiou                  roi_heads.maskiou.predictor.maskiou (*)
=========================  ==============================================  ====================================

(*) maskrcnn-benchmark's class channels include the background at index 0 (``NUM_CLASSES = 81``): it is dropped.
(``mask_head`` and ``mask_iou_head`` sit under ``roi_head.``.)
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .resnet import ResNetConversion, ResNetConversionError, convert_resnet_state_dict, looks_like_resnet
from .vovnet import VoVNetConversion, VoVNetConversionError, convert_vovnet_state_dict, unwrap_state_dict


class CenterMaskConversionError(ValueError):
    """The checkpoint is not a CenterMask detector in a known layout, or does not fit the model."""


def _keep(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _scalar(tensor: torch.Tensor) -> torch.Tensor:
    """detectron2 / maskrcnn-benchmark ``Scale`` holds shape (1,), mmcv's ``Scale`` shape ()."""
    return tensor.reshape(())


def _drop_background(tensor: torch.Tensor) -> torch.Tensor:
    """maskrcnn-benchmark class outputs ``[1 + C, ...]`` with the background first -> ``[C, ...]``."""
    return tensor[1:]


def _tower(head: str) -> Callable[[re.Match], Tuple[str, Callable]]:
    """FCOS tower ``nn.Sequential(conv, GroupNorm, ReLU) x N``: position 3i is conv i, 3i + 1 its GroupNorm."""
    def rule(m: re.Match):
        convs = 'cls_convs' if m[1] == 'cls' else 'reg_convs'
        index, kind = divmod(int(m[2]), 3)
        if kind == 2:  # a ReLU holds no tensors; anything here is foreign
            return None
        return f'{head}.{convs}.{index}.{"conv" if kind == 0 else "gn"}.{m[3]}', _keep
    return rule


def _rule(template: str, transform: Callable = _keep, offset: int = 0) -> Callable:
    """``template`` is formatted with the match groups; ``{i}`` is the first group as an int minus ``offset``."""
    def rule(m: re.Match):
        groups = m.groups()
        return template.format(*groups, i=int(groups[0]) - offset if offset else None), transform
    return rule


_P = r'(weight|bias)'
_FCOS_C2 = 'proposal_generator.fcos_head'
_FCOS_MB = 'rpn.head'
_MASK, _MASKIOU = 'roi_head.mask_head', 'roi_head.mask_iou_head'

#: Per source layout: the backbone prefix (handed to the VoVNet mapping) and (regex, rule) pairs for the rest.
LAYOUTS: Dict[str, Tuple[str, List[Tuple[re.Pattern, Callable]]]] = {
    'centermask2': ('backbone.bottom_up.', [
        (re.compile(rf'^backbone\.fpn_lateral([345])\.{_P}$'), _rule('neck.lateral_convs.{i}.conv.{1}', offset=3)),
        (re.compile(rf'^backbone\.fpn_output([345])\.{_P}$'), _rule('neck.fpn_convs.{i}.conv.{1}', offset=3)),
        (re.compile(rf'^backbone\.top_block\.p([67])\.{_P}$'), _rule('neck.fpn_convs.{i}.conv.{1}', offset=3)),
        (re.compile(rf'^{_FCOS_C2}\.(cls|bbox)_tower\.(\d+)\.{_P}$'), _tower('bbox_head')),
        (re.compile(rf'^{_FCOS_C2}\.cls_logits\.{_P}$'), _rule('bbox_head.conv_cls.{0}')),
        (re.compile(rf'^{_FCOS_C2}\.bbox_pred\.{_P}$'), _rule('bbox_head.conv_reg.{0}')),
        (re.compile(rf'^{_FCOS_C2}\.ctrness\.{_P}$'), _rule('bbox_head.conv_centerness.{0}')),
        (re.compile(rf'^{_FCOS_C2}\.scales\.(\d)\.scale$'), _rule('bbox_head.scales.{0}.scale', _scalar)),
        (re.compile(rf'^roi_heads\.mask_head\.mask_fcn(\d)\.{_P}$'), _rule(_MASK + '.convs.{i}.conv.{1}', offset=1)),
        (re.compile(r'^roi_heads\.mask_head\.spatialAtt\.conv\.(weight)$'),
         _rule(_MASK + '.spatial_attention.conv.{0}')),
        (re.compile(rf'^roi_heads\.mask_head\.deconv\.{_P}$'), _rule(_MASK + '.upsample.{0}')),
        (re.compile(rf'^roi_heads\.mask_head\.predictor\.{_P}$'), _rule(_MASK + '.conv_logits.{0}')),
        (re.compile(rf'^roi_heads\.maskiou_head\.maskiou_fcn(\d)\.{_P}$'),
         _rule(_MASKIOU + '.convs.{i}.{1}', offset=1)),
        (re.compile(rf'^roi_heads\.maskiou_head\.maskiou_fc([12])\.{_P}$'),
         _rule(_MASKIOU + '.fcs.{i}.{1}', offset=1)),
        (re.compile(rf'^roi_heads\.maskiou_head\.maskiou\.{_P}$'), _rule(_MASKIOU + '.fc_mask_iou.{0}')),
    ]),
    'maskrcnn-benchmark': ('backbone.body.', [
        (re.compile(rf'^backbone\.fpn\.fpn_inner([234])\.{_P}$'),
         _rule('neck.lateral_convs.{i}.conv.{1}', offset=2)),
        (re.compile(rf'^backbone\.fpn\.fpn_layer([234])\.{_P}$'), _rule('neck.fpn_convs.{i}.conv.{1}', offset=2)),
        (re.compile(rf'^backbone\.fpn\.top_blocks\.p([67])\.{_P}$'),
         _rule('neck.fpn_convs.{i}.conv.{1}', offset=3)),
        (re.compile(rf'^{_FCOS_MB}\.(cls|bbox)_tower\.(\d+)\.{_P}$'), _tower('bbox_head')),
        (re.compile(rf'^{_FCOS_MB}\.cls_logits\.{_P}$'), _rule('bbox_head.conv_cls.{0}')),
        (re.compile(rf'^{_FCOS_MB}\.bbox_pred\.{_P}$'), _rule('bbox_head.conv_reg.{0}')),
        (re.compile(rf'^{_FCOS_MB}\.centerness\.{_P}$'), _rule('bbox_head.conv_centerness.{0}')),
        (re.compile(rf'^{_FCOS_MB}\.scales\.(\d)\.scale$'), _rule('bbox_head.scales.{0}.scale', _scalar)),
        (re.compile(rf'^roi_heads\.mask\.feature_extractor\.mask_fcn(\d)\.{_P}$'),
         _rule(_MASK + '.convs.{i}.conv.{1}', offset=1)),
        (re.compile(r'^roi_heads\.mask\.feature_extractor\.spatialAtt\.conv\.(weight)$'),
         _rule(_MASK + '.spatial_attention.conv.{0}')),
        (re.compile(rf'^roi_heads\.mask\.predictor\.conv5_mask\.{_P}$'), _rule(_MASK + '.upsample.{0}')),
        (re.compile(rf'^roi_heads\.mask\.predictor\.mask_fcn_logits\.{_P}$'),
         _rule(_MASK + '.conv_logits.{0}', _drop_background)),
        (re.compile(rf'^roi_heads\.maskiou\.feature_extractor\.maskiou_fcn(\d)\.{_P}$'),
         _rule(_MASKIOU + '.convs.{i}.{1}', offset=1)),
        (re.compile(rf'^roi_heads\.maskiou\.feature_extractor\.maskiou_fc([12])\.{_P}$'),
         _rule(_MASKIOU + '.fcs.{i}.{1}', offset=1)),
        (re.compile(rf'^roi_heads\.maskiou\.predictor\.maskiou\.{_P}$'),
         _rule(_MASKIOU + '.fc_mask_iou.{0}', _drop_background)),
    ]),
}
#: Keys that carry no weights of the network (buffers of BatchNorm counters).
_IGNORED = re.compile(r'num_batches_tracked$')
#: detectron2 <= v0.3 ``GeneralizedRCNN`` buffers (non-persistent from v0.4): the input normalisation, checked
#: against the config's ``data_preprocessor`` (:func:`check_normalization`) instead of converted
_NORMALIZATION_KEYS = ('pixel_mean', 'pixel_std')


@dataclass
class CenterMaskConversion:
    """Result of :func:`convert_centermask_state_dict`: our tensors and what the source turned out to be."""
    state_dict: 'OrderedDict[str, torch.Tensor]'
    layout: str
    backbone: Union[VoVNetConversion, ResNetConversion]
    fpn_channels: int
    num_classes: int
    stacked_convs: int
    mask_convs: int
    stripped_prefix: str = ''
    ignored_keys: List[str] = field(default_factory=list)
    #: detectron2 <= v0.3 files: the ``pixel_mean`` / ``pixel_std`` buffers of ``GeneralizedRCNN`` (3 values each,
    #: in the order of the network's input channels), checked against the config by :func:`check_normalization`
    pixel_mean: Optional[List[float]] = None
    pixel_std: Optional[List[float]] = None

    @property
    def lite(self) -> bool:
        """CenterMask-Lite: 128-channel FPN (centermask2 Base-CenterMask-Lite-VoVNet; ref §7.1)."""
        return self.fpn_channels == 128

    def config_name(self) -> str:
        """File name of the zoo config (``configs/centermask/``) whose model this checkpoint loads into, by the
        naming scheme of the zoo: ``centermask[-lite]_<arch>[-dcn]_fpn_ms-<3x|4x>_coco[_maskrcnn-benchmark].py``."""
        family, schedule = ('centermask-lite', '4x') if self.lite else ('centermask', '3x')
        origin = '_maskrcnn-benchmark' if self.layout == 'maskrcnn-benchmark' else ''
        return f'{family}_{self.backbone.config_token}_fpn_ms-{schedule}_coco{origin}.py'

    def summary(self) -> str:
        return (f'layout {self.layout}, {"CenterMask-Lite" if self.lite else "CenterMask"}, backbone '
                f'{self.backbone.arch} (DCN stages: {list(self.backbone.stage_with_dcn)}), FPN {self.fpn_channels} '
                f'channels, {self.stacked_convs}-conv FCOS towers, {self.mask_convs}-conv mask head, '
                f'{self.num_classes} classes')


def detect_layout(keys) -> str:
    if any(k.startswith(('proposal_generator.fcos_head.', 'backbone.bottom_up.', 'roi_heads.mask_head.'))
           for k in keys):
        return 'centermask2'
    if any(k.startswith(('rpn.head.', 'backbone.body.', 'roi_heads.mask.')) for k in keys):
        return 'maskrcnn-benchmark'
    raise CenterMaskConversionError(
        'Not a CenterMask detector checkpoint in a known layout: expected centermask2 keys '
        "('backbone.bottom_up.*', 'proposal_generator.fcos_head.*', 'roi_heads.mask_head.*') or maskrcnn-benchmark "
        f"keys ('backbone.body.*', 'rpn.head.*', 'roi_heads.mask.*'); got e.g. {sorted(keys)[:5]}")


def convert_centermask_state_dict(checkpoint: dict) -> CenterMaskConversion:
    """Map a centermask2 or maskrcnn-benchmark CenterMask checkpoint (``{"model": ...}``, ``{"state_dict": ...}``
    or bare; a DataParallel ``module.`` prefix is stripped) onto :class:`CenterMask` keys.

    Raises :class:`CenterMaskConversionError` naming the keys no rule maps, or when the backbone is not a VoVNet
    of a known arch. Use :func:`check_against_model` for the keys the source leaves uncovered.
    """
    state = unwrap_state_dict(checkpoint)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)] if isinstance(state, dict) else []
        raise CenterMaskConversionError(f'The model state dict must hold tensors only; not tensors: {bad[:10]}')
    prefix = 'module.' if state and all(k.startswith('module.') for k in state) else ''
    state = {k[len(prefix):]: v for k, v in state.items()}
    layout = detect_layout(state)
    backbone_prefix, rules = LAYOUTS[layout]

    backbone_state, converted, unmapped, ignored = {}, OrderedDict(), [], []
    normalization = {}
    for key, value in state.items():
        if _IGNORED.search(key):
            ignored.append(key)
        elif layout == 'centermask2' and key in _NORMALIZATION_KEYS:
            if value.numel() != 3:
                raise CenterMaskConversionError(f'{key} of the {layout} checkpoint has shape {tuple(value.shape)}; '
                                                'detectron2 saves 3 values, one per input channel ([3, 1, 1])')
            normalization[key] = [float(v) for v in value.flatten().tolist()]
        elif key.startswith(backbone_prefix):
            backbone_state[key] = value
        else:
            for pattern, rule in rules:
                match = pattern.match(key)
                mapped = rule(match) if match else None
                if mapped is not None:
                    target, transform = mapped
                    converted[target] = transform(value)
                    break
            else:
                unmapped.append(key)
    if unmapped:
        raise CenterMaskConversionError(
            f'{len(unmapped)} keys of the {layout} checkpoint map to no part of CenterMask (refusing to guess): '
            f'{unmapped[:10]}')
    if not backbone_state:
        raise CenterMaskConversionError(f"No backbone keys ('{backbone_prefix}*') in the {layout} checkpoint")
    backbone_state = {k[len(backbone_prefix):]: v for k, v in backbone_state.items()}
    try:
        if looks_like_resnet(backbone_state):
            backbone = convert_resnet_state_dict(backbone_state)
        else:
            backbone = convert_vovnet_state_dict(backbone_state)
    except (VoVNetConversionError, ResNetConversionError) as err:
        raise CenterMaskConversionError(f'The backbone ({backbone_prefix}*) is not a VoVNet or ResNet this package '
                                        f'converts: {err}') from err
    for key, value in backbone.state_dict.items():
        converted[f'backbone.{key}'] = value

    def count(pattern: str) -> int:
        return len({m[1] for k in converted for m in [re.match(pattern, k)] if m})

    needed = ['neck.lateral_convs.0.conv.weight', 'bbox_head.conv_cls.weight']
    missing = [k for k in needed if k not in converted]
    if missing:
        raise CenterMaskConversionError(f'The {layout} checkpoint has no FPN or FCOS predictor: {missing} missing')
    return CenterMaskConversion(
        state_dict=converted, layout=layout, backbone=backbone,
        fpn_channels=converted['neck.lateral_convs.0.conv.weight'].shape[0],
        num_classes=converted['bbox_head.conv_cls.weight'].shape[0],
        stacked_convs=count(r'^bbox_head\.cls_convs\.(\d+)\.'), mask_convs=count(rf'^{_MASK}\.convs\.(\d+)\.'),
        stripped_prefix=prefix, ignored_keys=ignored, pixel_mean=normalization.get('pixel_mean'),
        pixel_std=normalization.get('pixel_std'))


def check_normalization(result: CenterMaskConversion, data_preprocessor: Optional[dict]) -> Optional[str]:
    """Compare the ``pixel_mean`` / ``pixel_std`` buffers that detectron2 <= v0.3 saved in the checkpoint (the
    normalisation the network was trained with) with the ``data_preprocessor`` of the target config.

    detectron2 subtracts ``pixel_mean`` from the network's input in its channel order (``INPUT.FORMAT``: BGR in
    centermask2); mmdet's ``DetDataPreprocessor`` subtracts ``mean`` after the optional ``bgr_to_rgb`` swap of the
    BGR-loaded image, so both are in the order of the network's input channels and are compared as they are, in
    float32 (the dtype of the buffers). Returns a report line when they agree (``None`` when the file has no such
    buffers: detectron2 >= v0.4, maskrcnn-benchmark); raises :class:`CenterMaskConversionError` with the
    ``data_preprocessor`` settings that would match when they differ (a reversed mean says that the channel order
    differs: ``bgr_to_rgb`` flipped).
    """
    if result.pixel_mean is None and result.pixel_std is None:
        return None
    data_preprocessor = data_preprocessor or {}
    cfg_mean = data_preprocessor.get('mean') or [0.0, 0.0, 0.0]
    cfg_std = data_preprocessor.get('std') or [1.0, 1.0, 1.0]
    bgr_to_rgb = bool(data_preprocessor.get('bgr_to_rgb', False) or data_preprocessor.get('rgb_to_bgr', False))
    mean = result.pixel_mean if result.pixel_mean is not None else cfg_mean
    std = result.pixel_std if result.pixel_std is not None else cfg_std

    def same(a, b) -> bool:
        return torch.equal(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))

    def fmt(values) -> str:  # the shortest decimals that give the same float32 (what a config can copy)
        def shortest(value: float) -> str:
            value32 = torch.tensor(value, dtype=torch.float32)
            for digits in range(1, 10):
                text = repr(float(f'{value32.item():.{digits}g}'))
                if torch.tensor(float(text), dtype=torch.float32) == value32:
                    return text
            return repr(value32.item())
        return '[' + ', '.join(shortest(v) for v in values) + ']'

    if same(mean, cfg_mean) and same(std, cfg_std):
        return (f'pixel_mean {fmt(mean)} / pixel_std {fmt(std)} (detectron2 <= v0.3 buffers) equal the config\'s '
                'data_preprocessor mean / std: dropped')
    swapped = same(mean, cfg_mean[::-1]) and same(std, cfg_std[::-1]) and not same(mean, mean[::-1])
    suggestion = (f'data_preprocessor=dict(mean={fmt(mean)}, std={fmt(std)}, '
                  f'bgr_to_rgb={not bgr_to_rgb if swapped else bgr_to_rgb})')
    why = (' (the same values in reverse order: the network was trained on the other channel order)'
           if swapped else '')
    raise CenterMaskConversionError(
        f'the checkpoint\'s pixel_mean {fmt(mean)} / pixel_std {fmt(std)} (the normalisation it was trained with, '
        f'in the order of its input channels) differ from the config\'s data_preprocessor mean {fmt(cfg_mean)} / '
        f'std {fmt(cfg_std)} (bgr_to_rgb={bgr_to_rgb}){why}; refusing: the converted model would see other '
        f'inputs than it was trained on. Settings that match: model = dict({suggestion})')


def check_against_model(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> None:
    """Refuse (:class:`CenterMaskConversionError`) unless ``state_dict`` covers every parameter and buffer of
    ``model`` (BatchNorm's ``num_batches_tracked`` counters aside) with tensors of the same shapes, and nothing
    else."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not _IGNORED.search(k)}
    given = {k: tuple(v.shape) for k, v in state_dict.items()}
    uncovered = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mismatched = [f'{k}: checkpoint {given[k]} vs model {expected[k]}'
                  for k in sorted(set(given) & set(expected)) if given[k] != expected[k]]
    problems = []
    if uncovered:
        problems.append(f'{len(uncovered)} model keys not covered by the checkpoint: {uncovered[:10]}')
    if unexpected:
        problems.append(f'{len(unexpected)} converted keys the model does not have: {unexpected[:10]}')
    if mismatched:
        problems.append(f'{len(mismatched)} shape mismatches: {mismatched[:10]}')
    if problems:
        raise CenterMaskConversionError('; '.join(problems))


def load_centermask_checkpoint(path: str) -> CenterMaskConversion:
    """Read a published checkpoint with ``weights_only=True`` (:func:`safe_torch_load`, which also admits the
    solver state and counters such files carry, and nothing that runs code) and convert it."""
    from centermask_mm.utils.safe_checkpoint import safe_torch_load
    return convert_centermask_state_dict(safe_torch_load(path, map_location='cpu'))


def save_converted_detector(result: CenterMaskConversion, dst: str, config: Optional[str] = None) -> None:
    """Write an mmengine checkpoint (``state_dict`` + ``meta``) that ``tools/test.py CONFIG DST`` and
    ``load_from`` read."""
    meta = dict(source_layout=result.layout, backbone=result.backbone.backbone_cfg(), config=config,
                summary=result.summary(), license=WEIGHTS_LICENSE[result.layout])
    torch.save(dict(state_dict=result.state_dict, meta=meta), dst)


def build_model_from_config(config) -> nn.Module:
    """The detector of ``config`` (a path or a loaded ``Config``), with no pretrained backbone to fetch, for
    :func:`check_against_model`."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        return MODELS.build(cfg.model)


#: The licence of the published weights this converter reads, printed in its report and saved in the meta.
WEIGHTS_LICENSE = {
    'centermask2': 'centermask2 and vovnet-detectron2 publish their weights under CC BY-NC 4.0 (non-commercial); '
                   'a converted file inherits that licence',
    'maskrcnn-benchmark': 'the CenterMask paper code (maskrcnn-benchmark) is released with a non-commercial '
                          'clause (FCOS "for non-commercial purposes"); a converted file inherits those terms',
}


def check_for_config(result: CenterMaskConversion, config) -> List[str]:
    """Everything that must hold before ``result`` is written for ``config`` (a path or a loaded ``Config``): every
    parameter and buffer of its model covered with the right shape (:func:`check_against_model`) and, for
    detectron2 <= v0.3 files, the saved input normalisation equal to its ``data_preprocessor``
    (:func:`check_normalization`). Raises :class:`CenterMaskConversionError`; returns the report lines."""
    from mmengine.config import Config
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    check_against_model(result.state_dict, build_model_from_config(cfg))
    report = [f'every parameter and buffer of the model is covered ({len(result.state_dict)} tensors)']
    normalization = check_normalization(result, cfg.model.get('data_preprocessor'))
    if normalization is not None:
        report.append(normalization)
    report.append(f'licence: {WEIGHTS_LICENSE[result.layout]}')
    return report


def convert_for_config(checkpoint: dict, config: str) -> CenterMaskConversion:
    """:func:`convert_centermask_state_dict`, then :func:`check_for_config` against ``config``."""
    result = convert_centermask_state_dict(checkpoint)
    check_for_config(result, config)
    return result
