"""Import VoVNet weights from the detectron2 (centermask2 / vovnet-detectron2), timm and mmdet layouts.

The mmdet layout is this package's own key naming (``stem.0.conv.weight``, ``stages.0.blocks.0.layers.0.conv.weight``),
as found under ``backbone.`` in any mmengine model that uses :class:`VoVNet`, e.g. the ImageNet classifier of
``projects/vovnet_classification`` (mmpretrain); it goes through the same slots so that the arch is detected and
keys and shapes are checked like the other layouts.

Reference key layouts: ``docs/reference.md`` §8.1 (detectron2), §8.2 (timm), §8.3 (mapping).
Each source key is parsed into a layout-free *slot* ``(module path, part, param)`` and rendered in the key names of
:class:`~centermask_mm.models.backbones.vovnet.VoVNet`; the arch is then found by matching names and shapes against
every row of ``VoVNet.arch_settings`` (built on the meta device, so nothing is allocated).
"""
import functools
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

#: Prefixes stripped from backbone keys: detectron2 detectors (``backbone.bottom_up.``), maskrcnn-benchmark
#: (``backbone.body.``), DataParallel (``module.``).
KNOWN_PREFIXES = ('module.', 'backbone.bottom_up.', 'bottom_up.', 'backbone.body.', 'backbone.')
#: Keys that belong to an ImageNet classifier, dropped (and reported).
CLASSIFIER_PATTERN = re.compile(r'^(head|classifier|fc|linear)\.')

_D2_PART = {'conv': 'conv', 'norm': 'norm', 'dw_conv3x3': 'dw', 'pw_conv1x1': 'pw', 'pw_norm': 'norm',
            'conv_offset': 'offset'}
_TIMM_PART = {'conv': 'conv', 'bn': 'norm', 'conv_dw': 'dw', 'conv_pw': 'pw'}
_D2_PATTERNS = [
    (re.compile(r'^stem\.stem_(\d)/(\w+)\.(\w+)$'), lambda m: (f'stem.{int(m[1]) - 1}', m[2], m[3])),
    (re.compile(r'^stage(\d)\.OSA\1_(\d+)\.layers\.(\d+)\.OSA\1_\2_\3/(\w+)\.(\w+)$'),
     lambda m: (f'stages.{int(m[1]) - 2}.blocks.{int(m[2]) - 1}.layers.{m[3]}', m[4], m[5])),
    (re.compile(r'^stage(\d)\.OSA\1_(\d+)\.conv_reduction\.OSA\1_\2_reduction_0/(\w+)\.(\w+)$'),
     lambda m: (f'stages.{int(m[1]) - 2}.blocks.{int(m[2]) - 1}.conv_reduction', m[3], m[4])),
    (re.compile(r'^stage(\d)\.OSA\1_(\d+)\.concat\.OSA\1_\2_concat/(\w+)\.(\w+)$'),
     lambda m: (f'stages.{int(m[1]) - 2}.blocks.{int(m[2]) - 1}.conv_concat', m[3], m[4])),
    (re.compile(r'^stage(\d)\.OSA\1_(\d+)\.ese\.fc\.(\w+)$'),
     lambda m: (f'stages.{int(m[1]) - 2}.blocks.{int(m[2]) - 1}.attn', 'fc', m[3])),
]
_TIMM_PATTERNS = [
    (re.compile(r'^stem\.(\d)\.(\w+)\.(\w+)$'), lambda m: (f'stem.{m[1]}', m[2], m[3])),
    (re.compile(r'^stages\.(\d)\.blocks\.(\d+)\.conv_mid\.(\d+)\.(\w+)\.(\w+)$'),
     lambda m: (f'stages.{m[1]}.blocks.{m[2]}.layers.{m[3]}', m[4], m[5])),
    (re.compile(r'^stages\.(\d)\.blocks\.(\d+)\.(conv_reduction|conv_concat)\.(\w+)\.(\w+)$'),
     lambda m: (f'stages.{m[1]}.blocks.{m[2]}.{m[3]}', m[4], m[5])),
    (re.compile(r'^stages\.(\d)\.blocks\.(\d+)\.attn\.fc\.(\w+)$'),
     lambda m: (f'stages.{m[1]}.blocks.{m[2]}.attn', 'fc', m[3])),
]
_MMDET_PART = {'conv': 'conv', 'bn': 'norm', 'depthwise_conv.conv': 'dw', 'pointwise_conv.conv': 'pw',
               'pointwise_conv.bn': 'norm', 'conv.conv_offset': 'offset'}
_MMDET_PATTERNS = [
    (re.compile(r'^(stem\.\d|stages\.\d\.blocks\.\d+\.(?:layers\.\d+|conv_reduction|conv_concat))\.'
                r'(conv\.conv_offset|conv|bn|depthwise_conv\.conv|pointwise_conv\.conv|pointwise_conv\.bn)\.(\w+)$'),
     lambda m: (m[1], m[2], m[3])),
    (re.compile(r'^(stages\.\d\.blocks\.\d+\.attn)\.fc\.(\w+)$'), lambda m: (m[1], 'fc', m[2])),
]
LAYOUTS = {'detectron2': (_D2_PATTERNS, _D2_PART), 'timm': (_TIMM_PATTERNS, _TIMM_PART),
           'mmdet': (_MMDET_PATTERNS, _MMDET_PART)}


@dataclass
class VoVNetConversion:
    """Result of :func:`convert_vovnet_state_dict`."""
    state_dict: 'OrderedDict[str, torch.Tensor]'
    layout: str
    arch: str
    ese_last_block_only: bool
    stage_with_dcn: Tuple[bool, ...]
    dropped_keys: List[str] = field(default_factory=list)
    stripped_prefix: str = ''

    @property
    def config_token(self) -> str:
        """The arch as zoo config names spell it: ``V-39-eSE`` -> ``v2-39``, ``V-19-slim-dw-eSE`` -> ``v2-19-slim-dw``,
        ``V-39`` (VoVNetV1) -> ``v1-39``; ``-dcn`` when deformable stages are present."""
        version = 'v2' if self.arch.endswith('-eSE') else 'v1'
        dcn = '-dcn' if any(self.stage_with_dcn) else ''
        return f"{version}-{self.arch[2:].replace('-eSE', '')}".lower() + dcn

    def backbone_cfg(self) -> dict:
        """The ``VoVNet`` config these weights load into strictly."""
        cfg = dict(type='VoVNet', arch=self.arch, ese_last_block_only=self.ese_last_block_only)
        if any(self.stage_with_dcn):
            cfg.update(dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=self.stage_with_dcn)
        return cfg


class VoVNetConversionError(ValueError):
    """The weights are not a VoVNet in a known layout."""


def unwrap_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint file: bare, under ``model`` (detectron2) or ``state_dict`` (mmengine)."""
    for key in ('model', 'state_dict'):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def _strip_prefix(keys) -> str:
    """The prefix every backbone key carries; classifier keys (``head.fc.weight`` of an mmpretrain classifier beside
    ``backbone.stem...``) need not carry it."""
    backbone_keys = [k for k in keys if not CLASSIFIER_PATTERN.match(k)]
    for prefix in KNOWN_PREFIXES:
        if backbone_keys and all(k.startswith(prefix) for k in backbone_keys):
            return prefix
    return ''


def _detect_layout(keys) -> str:
    if any(k.startswith(('stem.stem_', 'stage2.OSA2_')) for k in keys):
        return 'detectron2'
    if any(re.match(r'^stages\.\d\.blocks\.\d+\.layers\.', k) for k in keys):  # timm names them conv_mid
        return 'mmdet'
    if any(k.startswith(('stages.0.blocks.', 'stem.0.conv')) for k in keys):
        return 'timm'
    raise VoVNetConversionError('Not a VoVNet state dict in a known layout: expected detectron2 keys such as '
                                "'stem.stem_1/conv.weight', timm keys such as "
                                "'stages.0.blocks.0.conv_mid.0.conv.weight' or mmdet keys such as "
                                "'stages.0.blocks.0.layers.0.conv.weight'; got e.g. "
                                f'{sorted(keys)[:5]}')


def _render(path: str, part: str, param: str, depthwise_paths: set) -> str:
    """Our key for a parsed slot (see the key layout of VoVNet's ConvModule / DepthwiseSeparableConvModule)."""
    if part == 'fc':
        return f'{path}.fc.{param}'
    if part == 'offset':
        return f'{path}.conv.conv_offset.{param}'
    if part == 'dw':
        return f'{path}.depthwise_conv.conv.{param}'
    if part == 'pw':
        return f'{path}.pointwise_conv.conv.{param}'
    if part == 'norm':
        return f'{path}.pointwise_conv.bn.{param}' if path in depthwise_paths else f'{path}.bn.{param}'
    return f'{path}.conv.{param}'


@functools.lru_cache(maxsize=None)
def _reference_shapes(arch: str, ese_last_block_only: bool, stage_with_dcn: tuple) -> Dict[str, tuple]:
    """Key -> shape of ``VoVNet(arch, ...)``, built on the meta device (mmcv's deformable conv, which uses the
    legacy tensor constructor, is built on the CPU)."""
    from centermask_mm.models.backbones.vovnet import VoVNet
    kwargs = dict(arch=arch, ese_last_block_only=ese_last_block_only)
    if any(stage_with_dcn):
        kwargs.update(dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=stage_with_dcn)
    with torch.device('cpu' if any(stage_with_dcn) else 'meta'):
        model = VoVNet(**kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}


def convert_vovnet_state_dict(checkpoint: dict) -> VoVNetConversion:
    """Convert detectron2- or timm-layout VoVNet weights into :class:`VoVNet` keys.

    Raises :class:`VoVNetConversionError` on keys that belong to no known layout, and when the converted keys and
    shapes match no arch exactly (listing the missing and unexpected keys of the closest arch).
    """
    from centermask_mm.models.backbones.vovnet import VoVNet
    state = unwrap_state_dict(checkpoint)
    prefix = _strip_prefix(list(state))
    original = {(k[len(prefix):] if k.startswith(prefix) else k): k for k in state}
    state = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
    layout = _detect_layout(state)
    patterns, parts = LAYOUTS[layout]

    dropped, unknown, slots = [], [], []
    for key, value in state.items():
        if key.endswith('num_batches_tracked') or CLASSIFIER_PATTERN.match(key):
            dropped.append(original[key])
            continue
        for pattern, to_slot in patterns:
            match = pattern.match(key)
            if match:
                path, part, param = to_slot(match)
                if part not in parts and part != 'fc':
                    unknown.append(original[key])
                else:
                    slots.append((path, parts.get(part, part), param, value))
                break
        else:
            unknown.append(original[key])
    if unknown:
        raise VoVNetConversionError(f'{len(unknown)} keys are not part of a {layout}-layout VoVNet backbone '
                                    f'(refusing to guess): {unknown[:10]}')

    depthwise_paths = {path for path, part, _, _ in slots if part == 'dw'}
    converted = OrderedDict(
        (_render(path, part, param, depthwise_paths), value) for path, part, param, value in slots)
    dcn_stages = {int(m[1]) for k in converted for m in [re.match(r'^stages\.(\d)\..*conv_offset', k)] if m}
    stage_with_dcn = tuple(i in dcn_stages for i in range(4))

    shapes = {k: tuple(v.shape) for k, v in converted.items()}
    best = None
    for arch in VoVNet.arch_settings:
        for last_only in (False, True):
            ref = _reference_shapes(arch, last_only, stage_with_dcn)
            if ref == shapes:
                return VoVNetConversion(converted, layout, arch, last_only, stage_with_dcn, dropped, prefix)
            missing = sorted(set(ref) - set(shapes))
            unexpected = sorted(set(shapes) - set(ref))
            mismatched = sorted(k for k in set(ref) & set(shapes) if ref[k] != shapes[k])
            score = len(missing) + len(unexpected) + len(mismatched)
            if best is None or score < best[0]:
                best = (score, arch, last_only, missing, unexpected, mismatched)
    _, arch, last_only, missing, unexpected, mismatched = best
    raise VoVNetConversionError(
        f'The {layout}-layout weights match no VoVNet arch exactly; closest is {arch} '
        f'(ese_last_block_only={last_only}) with {len(missing)} missing keys {missing[:6]}, {len(unexpected)} '
        f'unexpected keys {unexpected[:6]} and {len(mismatched)} shape mismatches {mismatched[:6]}')


def load_vovnet_weights(path: str, map_location='cpu') -> VoVNetConversion:
    """Read a weights file with ``weights_only=True`` and convert it."""
    from centermask_mm.utils.safe_checkpoint import safe_torch_load
    return convert_vovnet_state_dict(safe_torch_load(path, map_location=map_location))


def save_converted(result: VoVNetConversion, dst: str) -> Optional[str]:
    """Write an mmengine-style checkpoint that ``init_cfg=dict(type='Pretrained', checkpoint=dst)`` loads."""
    meta = dict(arch=result.arch, ese_last_block_only=result.ese_last_block_only,
                stage_with_dcn=list(result.stage_with_dcn), source_layout=result.layout)
    torch.save(dict(state_dict=result.state_dict, meta=meta), dst)
    return dst
