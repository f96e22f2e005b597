import re
import subprocess
import sys

import pytest
import timm  # a test dependency: the parity tests fail, not skip, without it
import torch
from timm.models import vovnet

from centermask_mm.converters.vovnet import VoVNetConversionError, convert_vovnet_state_dict
from centermask_mm.models.backbones import VoVNet
from tests.helpers import REPO_ROOT

TIMM_TO_ARCH = {
    'ese_vovnet19b_slim_dw': 'V-19-slim-dw-eSE',
    'ese_vovnet19b_dw': 'V-19-dw-eSE',
    'ese_vovnet19b_slim': 'V-19-slim-eSE',
    'ese_vovnet19b': 'V-19-eSE',
    'ese_vovnet39b': 'V-39-eSE',
    'ese_vovnet57b': 'V-57-eSE',
    'ese_vovnet99b': 'V-99-eSE',
    'vovnet39a': 'V-39',
    'vovnet57a': 'V-57',
}
# ref §8.1: tensors in a detectron2 (centermask2) VoVNet backbone state dict, FrozenBN buffers included.
REFERENCE_D2_KEY_COUNTS = {'V-19-slim-dw-eSE': 132, 'V-19-dw-eSE': 137, 'V-19-slim-eSE': 103, 'V-19-eSE': 103,
                           'V-39-eSE': 207, 'V-57-eSE': 303, 'V-99-eSE': 527}


def create_timm(name):
    """timm registers no ``ese_vovnet19b``, but its ``model_cfgs`` table has it."""
    if name in timm.list_models('*vovnet*'):
        return timm.create_model(name, pretrained=False)
    return vovnet.VovNet(vovnet.model_cfgs[name])


def randomize(model):
    """Random BN statistics and affine parameters and eSE biases on top of the (He-initialised) weights, so that
    eval-mode parity is not met trivially by identity BNs."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.dtype.is_floating_point or tensor.dim() > 1:
                continue
            if name.endswith(('running_var', 'weight')):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 0.5 + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    return model


@pytest.mark.parametrize('timm_name', sorted(TIMM_TO_ARCH))
def test_timm_weights_give_identical_features(timm_name):
    timm_model = randomize(create_timm(timm_name)).eval()
    result = convert_vovnet_state_dict(timm_model.state_dict())
    assert result.layout == 'timm'
    assert result.arch == TIMM_TO_ARCH[timm_name]
    assert {k.split('.')[0] for k in result.dropped_keys if 'num_batches' not in k} == {'head'}

    ours = VoVNet(arch=result.arch, out_indices=(0, 1, 2, 3), ese_last_block_only=True).eval()
    ours.load_state_dict(result.state_dict, strict=True)
    x = torch.randn(1, 3, 224, 288)
    with torch.no_grad():
        expected, y = [], timm_model.stem(x)
        for stage in timm_model.stages:
            y = stage(y)
            expected.append(y)
        outs = ours(x)
    for out, ref in zip(outs, expected):
        assert out.shape == ref.shape
        assert (out - ref).abs().max().item() <= 1e-4


def to_detectron2_layout(state_dict):
    """Our keys -> centermask2 keys, written from the reference key table (§8.1)."""
    out = {}
    for key, value in state_dict.items():
        if key.endswith('num_batches_tracked'):
            continue
        stem = re.match(r'^stem\.(\d)\.(.+)$', key)
        if stem:
            prefix, rest = f'stem.stem_{int(stem[1]) + 1}', stem[2]
        else:
            m = re.match(r'^stages\.(\d)\.blocks\.(\d+)\.(layers\.(\d+)|conv_reduction|conv_concat|attn)\.(.+)$', key)
            s, b = int(m[1]) + 2, int(m[2]) + 1
            osa = f'stage{s}.OSA{s}_{b}'
            if m[4] is not None:
                prefix = f'{osa}.layers.{m[4]}.OSA{s}_{b}_{m[4]}'
            elif m[3] == 'conv_reduction':
                prefix = f'{osa}.conv_reduction.OSA{s}_{b}_reduction_0'
            elif m[3] == 'conv_concat':
                prefix = f'{osa}.concat.OSA{s}_{b}_concat'
            else:
                out[f'{osa}.ese.{m[5]}'] = value
                continue
            rest = m[5]
        rest = (rest.replace('depthwise_conv.conv.', 'dw_conv3x3.').replace('pointwise_conv.conv.', 'pw_conv1x1.')
                .replace('pointwise_conv.bn.', 'pw_norm.').replace('conv.conv_offset.', 'conv_offset.')
                .replace('bn.', 'norm.'))
        out[f'{prefix}/{rest}'] = value
    return out


@pytest.mark.parametrize('arch', sorted(REFERENCE_D2_KEY_COUNTS))
@pytest.mark.parametrize('wrap', ['bare', 'model+prefix'])
def test_detectron2_layout_round_trip_loads_strictly(arch, wrap):
    source = randomize(VoVNet(arch=arch))
    d2 = to_detectron2_layout(source.state_dict())
    assert len(d2) == REFERENCE_D2_KEY_COUNTS[arch]
    if wrap == 'model+prefix':
        d2 = dict(model={f'backbone.bottom_up.{k}': v for k, v in d2.items()}, iteration=1)
    result = convert_vovnet_state_dict(d2)
    assert (result.layout, result.arch, result.ese_last_block_only) == ('detectron2', arch, False)
    target = VoVNet(arch=arch)
    target.load_state_dict(result.state_dict, strict=True)
    for key, value in source.state_dict().items():
        if not key.endswith('num_batches_tracked'):
            assert torch.equal(target.state_dict()[key], value), key


def test_detectron2_dcn_layout():
    source = VoVNet(arch='V-39-eSE', dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, True, True, True))
    d2 = to_detectron2_layout(source.state_dict())
    assert 'stage3.OSA3_1.layers.0.OSA3_1_0/conv_offset.weight' in d2
    result = convert_vovnet_state_dict(d2)
    assert result.stage_with_dcn == (False, True, True, True)
    VoVNet(**{k: v for k, v in result.backbone_cfg().items() if k != 'type'}).load_state_dict(
        result.state_dict, strict=True)


def test_unknown_and_missing_keys_are_refused():
    d2 = to_detectron2_layout(VoVNet(arch='V-19-eSE').state_dict())
    with pytest.raises(VoVNetConversionError, match='not part of a detectron2-layout'):
        convert_vovnet_state_dict({**d2, 'stage2.OSA2_1.extra/conv.weight': torch.zeros(1)})
    missing = dict(d2)
    missing.pop('stage5.OSA5_1.ese.fc.weight')
    with pytest.raises(VoVNetConversionError, match=r'closest is V-19-eSE .*1 missing keys'):
        convert_vovnet_state_dict(missing)
    with pytest.raises(VoVNetConversionError, match='known layout'):
        convert_vovnet_state_dict({'layer1.0.conv1.weight': torch.zeros(1)})


def test_cli_converts_and_pretrained_init_loads(tmp_path):
    timm_model = randomize(create_timm('ese_vovnet19b_dw'))
    src, dst = tmp_path / 'timm.pth', tmp_path / 'converted.pth'
    torch.save(timm_model.state_dict(), src)
    proc = subprocess.run([sys.executable, 'tools/model_converters/vovnet2mmdet.py', str(src), str(dst)],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # one block per stage: the timm and reference layouts coincide, either flag loads these weights
    assert 'arch: V-19-dw-eSE' in proc.stdout
    assert 'head.fc.weight' in proc.stdout
    model = VoVNet(arch='V-19-dw-eSE', ese_last_block_only=True,
                   init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    expected = timm_model.state_dict()['stages.3.blocks.0.attn.fc.weight']
    assert torch.equal(model.stages[3].blocks[0].attn.fc.weight, expected)


def test_cli_refuses_non_vovnet(tmp_path):
    src = tmp_path / 'resnet.pth'
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7)}, src)
    proc = subprocess.run([sys.executable, 'tools/model_converters/vovnet2mmdet.py', str(src), str(tmp_path / 'o')],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and 'known layout' in proc.stderr


@pytest.mark.parametrize('arch,dcn', [('V-19-slim-dw-eSE', False), ('V-39-eSE', False), ('V-19-eSE', True)])
def test_mmdet_layout_of_a_classifier_round_trips(arch, dcn):
    """Our own key names under ``backbone.`` beside an mmpretrain ``head.fc`` (projects/vovnet_classification):
    depthwise, deformable (offset convs) and plain archs come back key for key, the head is dropped."""
    kwargs = dict(dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, True, True, True)) if dcn else {}
    backbone = VoVNet(arch=arch, **kwargs)
    gen = torch.Generator().manual_seed(0)
    source = {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
              for k, v in backbone.state_dict().items()}
    classifier = {f'backbone.{k}': v for k, v in source.items()}
    classifier.update({'head.fc.weight': torch.zeros(2, 8), 'head.fc.bias': torch.zeros(2)})
    result = convert_vovnet_state_dict(dict(state_dict=classifier, meta={}))
    assert (result.layout, result.arch, result.stripped_prefix) == ('mmdet', arch, 'backbone.')
    assert result.stage_with_dcn == ((False, True, True, True) if dcn else (False, ) * 4)
    assert {'head.fc.weight', 'head.fc.bias'} <= set(result.dropped_keys)
    expected = {k: v for k, v in source.items() if not k.endswith('num_batches_tracked')}
    assert list(result.state_dict) == list(expected)
    assert all(torch.equal(result.state_dict[k], v) for k, v in expected.items())
