import math

import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import ModulatedDeformConv2dPack
from mmdet.models.layers import ChannelAttention, SELayer
from mmdet.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from centermask_mm.models.backbones import VoVNet

# ref §1.3: trainable parameters with eSE on every block (conv weights + eSE fc weight/bias + norm affine).
REFERENCE_PARAMS = {
    'V-19-slim-dw-eSE': 1_384_752,
    'V-19-dw-eSE': 5_518_080,
    'V-19-slim-eSE': 2_653_136,
    'V-19-eSE': 10_180_416,
    'V-39-eSE': 25_184_128,
    'V-57-eSE': 41_454_912,
    'V-99-eSE': 69_523_520,
}
# ref §1.3, the timm layout (eSE on the last block of each stage only)
REFERENCE_PARAMS_LAST_BLOCK_ONLY = {'V-39-eSE': 23_543_936, 'V-57-eSE': 37_583_936, 'V-99-eSE': 62_174_272}
# ref §1.1: stage2..5 output channels
REFERENCE_OUT_CHANNELS = {
    'V-19-slim-dw-eSE': (112, 256, 384, 512),
    'V-19-dw-eSE': (256, 512, 768, 1024),
    'V-19-slim-eSE': (112, 256, 384, 512),
    'V-19-eSE': (256, 512, 768, 1024),
    'V-39-eSE': (256, 512, 768, 1024),
    'V-57-eSE': (256, 512, 768, 1024),
    'V-99-eSE': (256, 512, 768, 1024),
    'V-39': (256, 512, 768, 1024),
    'V-57': (256, 512, 768, 1024),
}


def build(**kwargs):
    return MODELS.build(dict(type='VoVNet', **kwargs))


def num_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_every_arch_has_reference_channels():
    assert set(VoVNet.arch_settings) == set(REFERENCE_OUT_CHANNELS)


@pytest.mark.parametrize('arch', sorted(REFERENCE_PARAMS))
def test_parameter_count_equals_reference(arch):
    assert num_trainable(build(arch=arch)) == REFERENCE_PARAMS[arch]


@pytest.mark.parametrize('arch', sorted(REFERENCE_PARAMS_LAST_BLOCK_ONLY))
def test_parameter_count_timm_layout(arch):
    assert num_trainable(build(arch=arch, ese_last_block_only=True)) == REFERENCE_PARAMS_LAST_BLOCK_ONLY[arch]


@pytest.mark.parametrize('arch', sorted(REFERENCE_OUT_CHANNELS))
def test_output_channels_and_strides(arch):
    model = build(arch=arch, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 96))
    assert tuple(o.shape[1] for o in outs) == REFERENCE_OUT_CHANNELS[arch]
    assert tuple(o.shape[2:] for o in outs) == ((16, 24), (8, 12), (4, 6), (2, 3))
    assert model.out_channels == REFERENCE_OUT_CHANNELS[arch]
    assert model.out_strides == (4, 8, 16, 32)


def test_odd_input_size_uses_ceil_mode_pooling():
    model = build(arch='V-19-slim-dw-eSE', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 225, 301))
    # stem: two stride-2 convs with padding 1 -> ceil(225/4)=57, ceil(301/4)=76; then ceil-mode max pools
    h, w = 57, 76
    for i, out in enumerate(outs):
        assert out.shape[2:] == (h, w)
        h, w = math.ceil((h - 3) / 2) + 1, math.ceil((w - 3) / 2) + 1


def test_block_structure_follows_reference():
    model = build(arch='V-99-eSE')
    # residual only for blocks 2..B of a stage (ref §1.2)
    residual = [[block.residual for block in stage.blocks] for stage in model.stages]
    assert residual == [[False], [False, True, True], [False] + [True] * 8, [False, True, True]]
    # eSE on every block, as the reference (hard-sigmoid channel attention)
    assert all(isinstance(block.attn, ChannelAttention) for stage in model.stages for block in stage.blocks)
    assert isinstance(model.stages[0].blocks[0].attn.act, torch.nn.Hardsigmoid)
    # stage2 has no pooling, stages 3-5 a 3x3/2 ceil-mode max pool
    assert model.stages[0].pool is None
    assert all(s.pool.kernel_size == 3 and s.pool.stride == 2 and s.pool.ceil_mode for s in model.stages[1:])
    v1 = build(arch='V-39')
    assert all(block.attn is None and not block.residual for stage in v1.stages for block in stage.blocks)


def test_osa_block_forward_matches_its_definition():
    """out = eSE(concat1x1(cat[x, l1(x), l2(l1(x)), ...])) + x, with eSE = x * relu6(fc(gap(x)) + 3) / 6."""
    model = build(arch='V-39-eSE').eval()
    block = model.stages[3].blocks[1]
    x = torch.randn(2, 1024, 5, 7)
    with torch.no_grad():
        feats, y = [x], x
        for layer in block.layers:
            y = torch.relu(layer.bn(layer.conv(y)))
            feats.append(y)
        c = block.conv_concat
        z = torch.relu(c.bn(c.conv(torch.cat(feats, 1))))
        gate = torch.nn.functional.relu6(block.attn.fc(z.mean((2, 3), keepdim=True)) + 3) / 6
        expected = z * gate + x
        assert torch.allclose(block(x), expected, atol=1e-5)


def test_ese_equals_mmdet_channel_attention_without_the_deprecated_autocast_context():
    """Same parameters and bit-identical outputs as mmdet's ChannelAttention, and no FutureWarning of the deprecated
    ``torch.cuda.amp.autocast`` on a forward (mmdet's enters it on every call)."""
    import warnings

    from centermask_mm.models.backbones.vovnet import EffectiveSELayer
    torch.manual_seed(0)
    ours, mmdet_ese = EffectiveSELayer(64), ChannelAttention(64)
    assert [n for n, _ in ours.named_parameters()] == ['fc.weight', 'fc.bias']
    mmdet_ese.load_state_dict(ours.state_dict())
    x = torch.randn(2, 64, 9, 13)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        y = ours(x)
    assert not [w for w in caught if 'autocast' in str(w.message)]
    assert torch.equal(y, mmdet_ese(x))
    expected = x * torch.nn.functional.relu6(ours.fc(x.mean((2, 3), keepdim=True)) + 3) / 6
    assert torch.allclose(y, expected, atol=1e-6)


def test_ablation_overrides():
    assert all(isinstance(b.attn, SELayer) for s in build(arch='V-39-eSE', attn='se').stages for b in s.blocks)
    assert all(b.attn is None for s in build(arch='V-39-eSE', attn=None).stages for b in s.blocks)
    assert not any(b.residual for s in build(arch='V-39-eSE', residual=False).stages for b in s.blocks)
    last_only = build(arch='V-57-eSE', ese_last_block_only=True)
    assert [[b.attn is not None for b in s.blocks] for s in last_only.stages] == [
        [True], [True], [False, False, False, True], [False, False, True]]


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='V-40-eSE'), "valid choices are ['V-19-slim-dw-eSE'"),
    (dict(attn='cbam'), "valid choices are ['ese', 'se', None]"),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(stage_with_dcn=(True, )), 'stage_with_dcn'),
])
def test_invalid_options_fail_at_build_with_choices(kwargs, message):
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace('(', r'\(')):
        build(**kwargs)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 4])
def test_frozen_stages(frozen_stages):
    model = build(arch='V-19-slim-eSE', frozen_stages=frozen_stages)
    model.train()
    parts = [model.stem] + list(model.stages)
    for i, part in enumerate(parts):
        frozen = i <= frozen_stages
        assert all(p.requires_grad != frozen for p in part.parameters())
        assert all(m.training != frozen for m in part.modules() if isinstance(m, _BatchNorm))


def test_norm_eval_and_frozen_bn():
    model = build(arch='V-19-slim-eSE', norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert all(not m.weight.requires_grad and not m.bias.requires_grad for m in bns)
    before = bns[0].running_mean.clone()
    model(torch.rand(2, 3, 64, 64))
    assert torch.equal(before, bns[0].running_mean)


def test_group_norm():
    model = build(arch='V-19-slim-eSE', norm_cfg=dict(type='GN', num_groups=16, requires_grad=True))
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())
    outs = model(torch.rand(1, 3, 64, 64))
    assert len(outs) == 3


def test_dcn_forward_backward():
    model = build(arch='V-19-slim-eSE', dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
                  stage_with_dcn=(False, True, True, True))
    dcns = [m for m in model.modules() if isinstance(m, ModulatedDeformConv2dPack)]
    assert len(dcns) == 3 * 3  # every 3x3 of the OSA blocks of stages 3-5 (one block of 3 layers each)
    assert all(m.conv_offset.bias is not None and m.conv_offset.out_channels == 27 for m in dcns)
    assert not any(isinstance(m, ModulatedDeformConv2dPack) for m in model.stages[0].modules())
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    sum(o.sum() for o in model(x)).backward()
    assert dcns[0].weight.grad is not None and dcns[0].conv_offset.weight.grad is not None


def test_with_cp_recomputes_each_block_in_backward_with_the_same_results():
    """``with_cp=True`` checkpoints every OSA block: its forward runs a second time during the backward pass
    (counted on each block's concat conv); without it, once. Outputs and gradients are the same."""
    torch.manual_seed(0)
    norm = dict(type='GN', num_groups=16)  # no running statistics, which a recomputation would update twice
    plain = build(arch='V-19-slim-eSE', norm_cfg=norm, out_indices=(0, 1, 2, 3))
    checkpointed = build(arch='V-19-slim-eSE', norm_cfg=norm, out_indices=(0, 1, 2, 3), with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)
    results = []
    for model in (plain, checkpointed):
        calls = []
        for stage in model.stages:
            stage.blocks[0].conv_concat.register_forward_hook(lambda m, i, o: calls.append(1))
        outs = model(x)
        after_forward = len(calls)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
        results.append((after_forward, len(calls), outs, {n: p.grad for n, p in model.named_parameters()}))
    (plain_fwd, plain_total, plain_outs, plain_grads), (cp_fwd, cp_total, cp_outs, cp_grads) = results
    assert (plain_fwd, plain_total) == (4, 4)  # one block per stage, run once
    assert (cp_fwd, cp_total) == (4, 8)  # run again in the backward pass
    assert all(torch.equal(a, b) for a, b in zip(plain_outs, cp_outs))
    assert plain_grads.keys() == cp_grads.keys()
    a, b = (torch.cat([grads[name].flatten() for name in plain_grads]) for grads in (plain_grads, cp_grads))
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * a.abs().max().item())


def test_depthwise_arch_uses_reduction_and_separable_convs():
    model = build(arch='V-19-slim-dw-eSE')
    block = model.stages[1].blocks[0]  # 112 -> mid 80: needs the 1x1 reduction
    assert block.conv_reduction is not None and block.conv_reduction.conv.in_channels == 112
    layer = block.layers[0]
    assert layer.depthwise_conv.conv.groups == 80 and layer.depthwise_conv.norm_name is None
    assert model.stem[0].conv.groups == 1  # stem_1 is always a plain conv


def test_depthwise_osa_block_matches_its_definition():
    """§2 depthwise variant: a 1x1 reduction unit (in != layer width), then per layer a grouped 3x3 conv followed
    directly by a 1x1 conv (no norm or activation between them), then norm and ReLU; the concatenation of the
    block input and every layer output, the 1x1 concat unit, eSE."""
    model = build(arch='V-19-slim-dw-eSE').eval()
    block = model.stages[1].blocks[0]  # 112 -> layer width 80 -> 256
    x = torch.randn(1, 112, 6, 5)

    def norm_relu(bn, t):
        return torch.relu(F.batch_norm(t, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0., bn.eps))

    with torch.no_grad():
        r = block.conv_reduction
        y = norm_relu(r.bn, F.conv2d(x, r.conv.weight))
        feats = [x]
        for layer in block.layers:
            dw, pw = layer.depthwise_conv.conv, layer.pointwise_conv
            y = norm_relu(pw.bn, F.conv2d(F.conv2d(y, dw.weight, padding=1, groups=80), pw.conv.weight))
            feats.append(y)
        c = block.conv_concat
        z = norm_relu(c.bn, F.conv2d(torch.cat(feats, 1), c.conv.weight))
        gate = F.relu6(F.conv2d(z.mean((2, 3), keepdim=True), block.attn.fc.weight, block.attn.fc.bias) + 3) / 6
        expected = z * gate
        assert torch.allclose(block(x), expected, atol=1e-5)
