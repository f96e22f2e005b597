"""Import ResNet / ResNeXt backbones of the reference detectors into mmdet's ``ResNet`` / ``ResNeXt``.

Layouts (module paths of the reference code): maskrcnn-benchmark (the CenterMask paper code) ``stem.conv1``,
``stem.bn1``, ``layer{1-4}.{i}.conv{1,2,3}``, ``bn{1,2,3}``, ``downsample.{0,1}``; detectron2 (centermask2)
``stem.conv1`` (+ ``.norm``), ``res{2-5}.{i}.conv{1,2,3}`` (+ ``.norm``), ``shortcut`` (+ ``.norm``). Both use frozen
BN (weight, bias, running_mean, running_var). Depth comes from the block counts, groups and width from the shape of
the first 3x3 conv. Their MSRA ResNets put the stride in the 1x1 conv (mmdet ``style='caffe'``), their ResNeXts in
the 3x3 conv (``style='pytorch'``; maskrcnn-benchmark ``STRIDE_IN_1X1: False``).
"""
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Tuple

import torch

_NORM = {'norm': 'bn'}
_PATTERNS = {
    'maskrcnn-benchmark': [
        (re.compile(r'^stem\.(conv1|bn1)\.(\w+)$'), lambda m: f'{m[1]}.{m[2]}'),
        (re.compile(r'^layer([1-4])\.(\d+)\.(conv[123]|bn[123]|downsample\.[01])\.(\w+)$'),
         lambda m: f'layer{m[1]}.{m[2]}.{m[3]}.{m[4]}'),
    ],
    'detectron2': [
        (re.compile(r'^stem\.conv1\.(weight)$'), lambda m: f'conv1.{m[1]}'),
        (re.compile(r'^stem\.conv1\.norm\.(\w+)$'), lambda m: f'bn1.{m[1]}'),
        (re.compile(r'^res([2-5])\.(\d+)\.conv([123])\.(weight)$'),
         lambda m: f'layer{int(m[1]) - 1}.{m[2]}.conv{m[3]}.{m[4]}'),
        (re.compile(r'^res([2-5])\.(\d+)\.conv([123])\.norm\.(\w+)$'),
         lambda m: f'layer{int(m[1]) - 1}.{m[2]}.bn{m[3]}.{m[4]}'),
        (re.compile(r'^res([2-5])\.(\d+)\.shortcut\.(weight)$'),
         lambda m: f'layer{int(m[1]) - 1}.{m[2]}.downsample.0.{m[3]}'),
        (re.compile(r'^res([2-5])\.(\d+)\.shortcut\.norm\.(\w+)$'),
         lambda m: f'layer{int(m[1]) - 1}.{m[2]}.downsample.1.{m[3]}'),
    ],
}
DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}


class ResNetConversionError(ValueError):
    """The weights are not a ResNet / ResNeXt in a known layout."""


def looks_like_resnet(keys) -> bool:
    return any(k.startswith(('stem.conv1', 'layer1.', 'res2.')) for k in keys)


@dataclass
class ResNetConversion:
    state_dict: 'OrderedDict[str, torch.Tensor]'
    layout: str
    depth: int
    groups: int
    base_width: int
    stage_with_dcn: Tuple[bool, ...] = (False, False, False, False)

    @property
    def arch(self) -> str:
        return f'X-{self.depth}-{self.groups}x{self.base_width}d' if self.groups > 1 else f'R-{self.depth}'

    @property
    def config_token(self) -> str:
        return self.arch.lower()

    def backbone_cfg(self) -> dict:
        if self.groups > 1:
            return dict(type='ResNeXt', depth=self.depth, groups=self.groups, base_width=self.base_width,
                        style='pytorch')
        return dict(type='ResNet', depth=self.depth, style='caffe')


def convert_resnet_state_dict(state: Dict[str, torch.Tensor]) -> ResNetConversion:
    """``state``: backbone keys without the detector prefix; ``num_batches_tracked`` already removed."""
    layout = 'detectron2' if any(k.startswith('res2.') for k in state) else 'maskrcnn-benchmark'
    converted, unknown = OrderedDict(), []
    for key, value in state.items():
        for pattern, render in _PATTERNS[layout]:
            match = pattern.match(key)
            if match:
                converted[render(match)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ResNetConversionError(f'{len(unknown)} keys are not part of a {layout}-layout ResNet (refusing to '
                                    f'guess): {unknown[:10]}')
    blocks = tuple(len({k.split('.')[1] for k in converted if k.startswith(f'layer{i}.')}) for i in range(1, 5))
    if blocks not in DEPTHS or 'layer1.0.conv2.weight' not in converted:
        raise ResNetConversionError(f'ResNet blocks per stage {blocks} match no depth of {sorted(DEPTHS.values())}')
    width, width_per_group = converted['layer1.0.conv2.weight'].shape[:2]
    groups = width // width_per_group
    return ResNetConversion(converted, layout, DEPTHS[blocks], groups, width // groups if groups > 1 else 64)
