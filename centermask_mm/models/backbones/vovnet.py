"""VoVNet / VoVNetV2 backbone (Lee et al., CenterMask, CVPR 2020; Lee et al., VoVNet, CVPRW 2019).

Reference behaviour: ``docs/reference.md`` §1 (stage tables, stem, pooling, residual rule,
eSE placement, DCN, freezing) and §2 (OSA block). Every variant is one row of :attr:`VoVNet.arch_settings`.
"""
import copy
import logging
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.models.layers import ChannelAttention, SELayer
from mmdet.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule, ModuleList, Sequential
from torch.nn.modules.batchnorm import _BatchNorm

#: ``attn`` choices. 'ese' is effective Squeeze-Excitation (ref §2): global average pool -> one 1x1 conv with bias
#: -> hard-sigmoid relu6(x+3)/6 -> multiply (:class:`EffectiveSELayer`, mmdet's ``ChannelAttention``; its
#: parameters are named ``fc.weight``/``fc.bias`` like the reference ``ese.fc``). 'se' is the original two-FC SE
#: (ratio 16, ReLU, sigmoid) for the eSE-vs-SE ablation.
ATTENTION_CHOICES = ('ese', 'se', None)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f'VoVNet: invalid {name}={value!r}; valid choices are {list(choices)}')


class EffectiveSELayer(ChannelAttention):
    """eSE (ref §2): ``x [N, C, H, W]`` -> ``x * hsigmoid(fc(avgpool(x)))``, ``fc`` a 1x1 conv ``C -> C`` with bias.

    mmdet's :class:`ChannelAttention` (same parameters, same values) without the ``torch.cuda.amp.autocast(
    enabled=False)`` its ``forward`` enters around the pooling on every call: that API is deprecated (a
    ``FutureWarning`` in every run) and the context changes nothing, since autocast casts neither the average
    pooling nor its input; entering it is host time on each of the backbone's eSE blocks, which a batch-1 GPU
    forward (launch-bound) waits on.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


def _build_attention(attn: Optional[str], channels: int) -> Optional[nn.Module]:
    if attn == 'ese':
        return EffectiveSELayer(channels)
    if attn == 'se':
        return SELayer(channels, ratio=16)
    return None


class OSABlock(BaseModule):
    """One-Shot Aggregation block with optional identity mapping and attention (ref §2 ``_OSA_module``).

    ``x [N, in, H, W]`` -> (``conv_reduction`` 1x1 to ``mid`` when depthwise and ``in != mid``) -> ``num_layers``
    sequential 3x3 convs of ``mid`` channels (depthwise-separable, deformable or plain) -> concat of the block
    *input* and every layer output (``in + num_layers * mid`` channels) -> ``conv_concat`` 1x1 to ``out`` ->
    attention -> ``+ x`` when ``residual`` (after the attention, no activation after the add) -> ``[N, out, H, W]``.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 num_layers: int,
                 residual: bool = False,
                 attn: Optional[str] = 'ese',
                 depthwise: bool = False,
                 dcn: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 with_cp: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if residual and in_channels != out_channels:
            raise ValueError(f'OSABlock: a residual block needs in_channels == out_channels, '
                             f'got {in_channels} and {out_channels}')
        self.residual = residual
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=False)

        self.conv_reduction = None
        if depthwise and in_channels != mid_channels:
            self.conv_reduction = ConvModule(in_channels, mid_channels, 1, **common)
        self.layers = ModuleList()
        layer_in = mid_channels if depthwise else in_channels
        for _ in range(num_layers):
            if depthwise:  # dw 3x3 -> pw 1x1 -> norm -> ReLU; no norm/act between dw and pw (ref §2)
                layer = DepthwiseSeparableConvModule(
                    layer_in, mid_channels, 3, padding=1, dw_norm_cfg=None, dw_act_cfg=None, **common)
            elif dcn is not None:
                layer = ConvModule(layer_in, mid_channels, 3, padding=1, **dict(common, conv_cfg=dcn))
            else:
                layer = ConvModule(layer_in, mid_channels, 3, padding=1, **common)
            self.layers.append(layer)
            layer_in = mid_channels
        self.conv_concat = ConvModule(in_channels + num_layers * mid_channels, out_channels, 1, **common)
        self.attn = _build_attention(attn, out_channels)

    def init_weights(self):
        """ConvModule's init, then the deformable convs' own (zero offsets and masks): a Kaiming ``init_cfg`` of an
        enclosing module also reaches their ``conv_offset``, which must start at zero (ref §1.4). (VoVNet holds its
        blocks in mmengine's ModuleList / Sequential so that this runs before a ``Pretrained`` checkpoint loads.)"""
        super().init_weights()
        for m in self.modules():
            if m is not self and hasattr(m, 'conv_offset') and hasattr(m, 'init_weights'):
                m.init_weights()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        y = x if self.conv_reduction is None else self.conv_reduction(x)
        for layer in self.layers:
            y = layer(y)
            outs.append(y)
        y = self.conv_concat(torch.cat(outs, dim=1))
        if self.attn is not None:
            y = self.attn(y)
        if self.residual:
            y = y + x
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class OSAStage(BaseModule):
    """A VoVNet stage: ``MaxPool2d(3, 2, ceil_mode=True)`` (stages 3-5 only) then ``OSABlock`` s.

    The first block maps ``in_channels -> out_channels`` and never has a residual; blocks 2..B do when the arch is
    residual (ref §1.2). ``attn_blocks`` says which blocks get attention.
    """

    def __init__(self, in_channels, mid_channels, out_channels, num_blocks, num_layers, downsample, residual,
                 attn, attn_blocks, **block_kwargs):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True) if downsample else None
        self.blocks = Sequential(*[
            OSABlock(in_channels if i == 0 else out_channels, mid_channels, out_channels, num_layers,
                     residual=residual and i > 0, attn=attn if i in attn_blocks else None, **block_kwargs)
            for i in range(num_blocks)
        ])

    def forward(self, x):
        if self.pool is not None:
            x = self.pool(x)
        return self.blocks(x)


@MODELS.register_module()
class VoVNet(BaseModule):
    """VoVNet (V1) and VoVNetV2 (OSA + identity mapping + eSE) backbone.

    Args:
        arch (str): one of :attr:`arch_settings` (the reference ``CONV_BODY`` names).
        in_channels (int): input image channels.
        out_indices (Sequence[int]): stages to output, 0..3 = stage2..stage5 (strides 4, 8, 16, 32).
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and stage2..stage(k+1).
        norm_cfg (dict): norm layer (BN, SyncBN, GN...). Frozen BN is ``dict(type='BN', requires_grad=False)``
            together with ``norm_eval=True``.
        norm_eval (bool): keep every BatchNorm in eval mode during training (running stats frozen).
        dcn (dict, optional): conv config of a deformable conv, e.g. ``dict(type='DCNv2', deform_groups=1)``
            (mmcv's modulated deformable conv); replaces every 3x3 conv of the OSA blocks of the stages flagged
            in ``stage_with_dcn`` (not the stem, not 1x1 convs; depthwise archs keep their depthwise convs).
        stage_with_dcn (Sequence[bool]): four flags for stage2..stage5.
        attn (str | None): override the arch's attention: 'ese', 'se' or None.
        residual (bool, optional): override the arch's identity mapping.
        ese_last_block_only (bool): attention only on the last block of each stage (timm's layout, so that timm
            weights load); the reference (centermask2) puts it on every block (default).
        with_cp (bool): gradient checkpointing of each OSA block.
        init_cfg (dict | list, optional): e.g. ``dict(type='Pretrained', checkpoint='vovnet39.pth')``, a checkpoint
            made by ``tools/model_converters/vovnet2mmdet.py``. Default (as mmdet's ResNet): Kaiming normal
            (fan_out, ReLU) for every conv, eSE included, and constant 1 / 0 for the norms. Frozen norms
            (``requires_grad=False`` or ``norm_eval=True``) without a ``Pretrained`` entry are warned about at
            ``init_weights``: their statistics stay at mean 0 / variance 1 and training from scratch diverges.

    ``forward(x [N, 3, H, W])`` returns a tuple with one map per ``out_indices`` entry, stage ``i`` having
    ``arch_settings[arch]['stage_out_channels'][i]`` channels and size ``ceil(H / 2**(i+2))`` (ceil-mode pooling).
    """

    #: One row per variant (ref §1.1); the only place the channel numbers live.
    arch_settings = {
        'V-19-slim-dw-eSE': dict(stem_channels=(64, 64, 64), stage_mid_channels=(64, 80, 96, 112),
                                 stage_out_channels=(112, 256, 384, 512), layers_per_block=3,
                                 blocks_per_stage=(1, 1, 1, 1), residual=True, attn='ese', depthwise=True),
        'V-19-dw-eSE': dict(stem_channels=(64, 64, 64), stage_mid_channels=(128, 160, 192, 224),
                            stage_out_channels=(256, 512, 768, 1024), layers_per_block=3,
                            blocks_per_stage=(1, 1, 1, 1), residual=True, attn='ese', depthwise=True),
        'V-19-slim-eSE': dict(stem_channels=(64, 64, 128), stage_mid_channels=(64, 80, 96, 112),
                              stage_out_channels=(112, 256, 384, 512), layers_per_block=3,
                              blocks_per_stage=(1, 1, 1, 1), residual=True, attn='ese', depthwise=False),
        'V-19-eSE': dict(stem_channels=(64, 64, 128), stage_mid_channels=(128, 160, 192, 224),
                         stage_out_channels=(256, 512, 768, 1024), layers_per_block=3,
                         blocks_per_stage=(1, 1, 1, 1), residual=True, attn='ese', depthwise=False),
        'V-39-eSE': dict(stem_channels=(64, 64, 128), stage_mid_channels=(128, 160, 192, 224),
                         stage_out_channels=(256, 512, 768, 1024), layers_per_block=5,
                         blocks_per_stage=(1, 1, 2, 2), residual=True, attn='ese', depthwise=False),
        'V-57-eSE': dict(stem_channels=(64, 64, 128), stage_mid_channels=(128, 160, 192, 224),
                         stage_out_channels=(256, 512, 768, 1024), layers_per_block=5,
                         blocks_per_stage=(1, 1, 4, 3), residual=True, attn='ese', depthwise=False),
        'V-99-eSE': dict(stem_channels=(64, 64, 128), stage_mid_channels=(128, 160, 192, 224),
                         stage_out_channels=(256, 512, 768, 1024), layers_per_block=5,
                         blocks_per_stage=(1, 3, 9, 3), residual=True, attn='ese', depthwise=False),
        'V-39': dict(stem_channels=(64, 64, 128), stage_mid_channels=(128, 160, 192, 224),
                     stage_out_channels=(256, 512, 768, 1024), layers_per_block=5,
                     blocks_per_stage=(1, 1, 2, 2), residual=False, attn=None, depthwise=False),
        'V-57': dict(stem_channels=(64, 64, 128), stage_mid_channels=(128, 160, 192, 224),
                     stage_out_channels=(256, 512, 768, 1024), layers_per_block=5,
                     blocks_per_stage=(1, 1, 4, 3), residual=False, attn=None, depthwise=False),
    }
    _FROM_ARCH = object()  # sentinel: "use the arch's value"

    def __init__(self,
                 arch: str = 'V-39-eSE',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (1, 2, 3),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 attn=_FROM_ARCH,
                 residual: Optional[bool] = None,
                 ese_last_block_only: bool = False,
                 with_cp: bool = False,
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg=init_cfg)
        _check_choice('arch', arch, self.arch_settings)
        setting = self.arch_settings[arch]
        attn = setting['attn'] if attn is self._FROM_ARCH else attn
        _check_choice('attn', attn, ATTENTION_CHOICES)
        residual = setting['residual'] if residual is None else residual
        _check_choice('residual', residual, (True, False))
        _check_choice('ese_last_block_only', ese_last_block_only, (True, False))
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(4) for i in out_indices):
            raise ValueError(f'VoVNet: invalid out_indices={out_indices}; each must be one of [0, 1, 2, 3] '
                             '(stage2..stage5)')
        if frozen_stages not in range(-1, 5):
            raise ValueError(f'VoVNet: invalid frozen_stages={frozen_stages}; valid choices are '
                             f'{list(range(-1, 5))}')
        if len(stage_with_dcn) != 4:
            raise ValueError(f'VoVNet: stage_with_dcn needs 4 flags (stage2..stage5), got {stage_with_dcn}')
        if dcn is not None:
            dcn = copy.deepcopy(dict(dcn))
            dcn.pop('fallback_on_stride', None)  # accepted for symmetry with mmdet's ResNet dcn dicts

        self.arch = arch
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.stage_out_channels = setting['stage_out_channels']
        self.out_channels = tuple(self.stage_out_channels[i] for i in out_indices)
        self.out_strides = tuple(2 ** (i + 2) for i in out_indices)

        stem = setting['stem_channels']
        stem_conv = DepthwiseSeparableConvModule if setting['depthwise'] else ConvModule
        stem_extra = dict(dw_norm_cfg=None, dw_act_cfg=None) if setting['depthwise'] else {}
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=False)
        # stem_1 is always a plain conv; stem_2/stem_3 are depthwise-separable in the dw archs (ref §1.2).
        self.stem = Sequential(
            ConvModule(in_channels, stem[0], 3, stride=2, padding=1, **common),
            stem_conv(stem[0], stem[1], 3, stride=1, padding=1, **common, **stem_extra),
            stem_conv(stem[1], stem[2], 3, stride=2, padding=1, **common, **stem_extra),
        )
        self.stages = ModuleList()
        stage_in = stem[2]
        block_norm = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        for i, (mid, out, blocks) in enumerate(
                zip(setting['stage_mid_channels'], setting['stage_out_channels'], setting['blocks_per_stage'])):
            attn_blocks = (blocks - 1, ) if ese_last_block_only else tuple(range(blocks))
            self.stages.append(
                OSAStage(stage_in, mid, out, blocks, setting['layers_per_block'], downsample=i > 0,
                         residual=residual, attn=attn, attn_blocks=attn_blocks, depthwise=setting['depthwise'],
                         dcn=dcn if stage_with_dcn[i] else None, with_cp=with_cp, **block_norm))
            stage_in = out
        self._freeze_stages()

    def init_weights(self):
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        pretrained = any(cfg and cfg.get('type') == 'Pretrained' for cfg in cfgs)
        frozen_norm = any(isinstance(m, _BatchNorm) and (self.norm_eval or not m.weight.requires_grad)
                          for m in self.modules())
        if frozen_norm and not pretrained:
            message = ('VoVNet: frozen norm layers (norm_cfg requires_grad=False or norm_eval=True) without '
                       'pretrained weights keep mean 0 / variance 1, and training from scratch diverges. Fix: '
                       "train the norms (norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, or GN) or "
                       "load weights with init_cfg=dict(type='Pretrained', checkpoint=...). (Ignore this if the "
                       'whole detector is loaded afterwards with load_from or --resume.)')
            warnings.warn(message)
            print_log(message, logger='current', level=logging.WARNING)
        super().init_weights()

    def _freeze_stages(self):
        frozen = ([self.stem] if self.frozen_stages >= 0 else []) + list(self.stages[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages[:max(self.out_indices) + 1]):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True):
        """Set train/eval mode, keeping frozen stages and (with ``norm_eval``) every BatchNorm in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
