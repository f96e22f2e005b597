"""Whole-detector import: reference-layout state dicts (tests/reference_layouts.py, written from the documented key
layout, not from our modules) convert, load strictly into their zoo config's model, and land where they should."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS

from centermask_mm.converters.centermask import (CenterMaskConversionError, check_against_model,
                                                 convert_centermask_state_dict, convert_for_config,
                                                 load_centermask_checkpoint)
from centermask_mm.utils.safe_checkpoint import UnsafeCheckpointError
from tests.helpers import REPO_ROOT, config_path, model_cfg
from tests.reference_layouts import (BACKBONE_KEY_COUNTS, centermask2_shapes, fill, maskrcnn_benchmark_shapes,
                                     vovnet_shapes)

FCOS_C2, FCOS_MB = 'proposal_generator.fcos_head', 'rpn.head'
# (layout, arch, lite, DCN stages, zoo config)
CASES = {
    'c2-V2-39': ('centermask2', 'V-39-eSE', False, (), 'centermask_v2-39_fpn_ms-3x_coco.py'),
    'c2-V2-39-dcn': ('centermask2', 'V-39-eSE', False, (3, 4, 5), 'centermask_v2-39-dcn_fpn_ms-3x_coco.py'),
    'c2-V2-99': ('centermask2', 'V-99-eSE', False, (), 'centermask_v2-99_fpn_ms-3x_coco.py'),
    'c2-lite-V-19': ('centermask2', 'V-19-eSE', True, (), 'centermask-lite_v2-19_fpn_ms-4x_coco.py'),
    'c2-lite-V-19-slim-dw': ('centermask2', 'V-19-slim-dw-eSE', True, (),
                             'centermask-lite_v2-19-slim-dw_fpn_ms-4x_coco.py'),
    'mb-V2-39': ('maskrcnn-benchmark', 'V-39-eSE', False, (), 'centermask_v2-39_fpn_ms-3x_coco_maskrcnn-benchmark.py'),
    'mb-lite-V-19': ('maskrcnn-benchmark', 'V-19-eSE', True, (),
                     'centermask-lite_v2-19_fpn_ms-4x_coco_maskrcnn-benchmark.py'),
    'mb-R-50': ('maskrcnn-benchmark', 'R-50', False, (), 'centermask_r-50_fpn_ms-3x_coco_maskrcnn-benchmark.py'),
    'mb-X-101': ('maskrcnn-benchmark', 'X-101-32x8d', False, (),
                 'centermask_x-101-32x8d_fpn_ms-3x_coco_maskrcnn-benchmark.py'),
}


def reference_checkpoint(layout, arch, lite, dcn_stages, num_classes=80):
    if layout == 'centermask2':
        shapes = centermask2_shapes(arch, lite, dcn_stages, num_classes=num_classes)
    else:
        shapes = maskrcnn_benchmark_shapes(arch, lite, num_classes=num_classes)
    return fill(shapes)


def build_zoo_model(config):
    cfg = model_cfg('centermask', config)
    cfg.backbone.init_cfg = None
    return MODELS.build(cfg)


def test_reference_backbone_layout_has_the_documented_key_counts():
    for arch, count in BACKBONE_KEY_COUNTS.items():
        assert len(vovnet_shapes(arch)) == count, arch


@pytest.mark.parametrize('case', sorted(CASES))
def test_reference_checkpoint_converts_and_loads_strictly(case):
    layout, arch, lite, dcn_stages, config = CASES[case]
    source = reference_checkpoint(layout, arch, lite, dcn_stages)
    result = convert_centermask_state_dict(dict(model=source, iteration=270000))
    assert (result.layout, result.backbone.arch, result.lite) == (layout, arch, lite)
    assert result.backbone.stage_with_dcn == tuple(s in dcn_stages for s in (2, 3, 4, 5))
    assert result.config_name() == config
    assert len(result.state_dict) == len(source)  # every source tensor used once

    model = build_zoo_model(config)
    check_against_model(result.state_dict, model)
    model.load_state_dict(result.state_dict, strict=True)
    ours = model.state_dict()

    fcos = FCOS_C2 if layout == 'centermask2' else FCOS_MB
    pos = 3 * (2 if lite else 4) - 2  # GroupNorm of the last tower conv
    spots = {  # source key -> our key (hand-written from the mapping tables)
        f'{fcos}.cls_tower.{pos}.weight': f'bbox_head.cls_convs.{pos // 3}.gn.weight',
        f'{fcos}.bbox_tower.4.bias': 'bbox_head.reg_convs.1.gn.bias',
        f'{fcos}.cls_logits.bias': 'bbox_head.conv_cls.bias',
    }
    if layout == 'centermask2':
        spots.update({
            'backbone.top_block.p7.weight': 'neck.fpn_convs.4.conv.weight',
            'backbone.fpn_lateral4.bias': 'neck.lateral_convs.1.conv.bias',
            'roi_heads.mask_head.spatialAtt.conv.weight': 'roi_head.mask_head.spatial_attention.conv.weight',
            'roi_heads.mask_head.predictor.weight': 'roi_head.mask_head.conv_logits.weight',
            'roi_heads.maskiou_head.maskiou_fc2.weight': 'roi_head.mask_iou_head.fcs.1.weight',
            'roi_heads.maskiou_head.maskiou_fcn1.weight': 'roi_head.mask_iou_head.convs.0.weight',
            'backbone.bottom_up.stage5.OSA5_1.ese.fc.bias': 'backbone.stages.3.blocks.0.attn.fc.bias',
        })
        prefix = 'backbone.bottom_up.'
    else:
        spots.update({
            'backbone.fpn.top_blocks.p7.weight': 'neck.fpn_convs.4.conv.weight',
            'backbone.fpn.fpn_inner3.bias': 'neck.lateral_convs.1.conv.bias',
            'roi_heads.mask.feature_extractor.spatialAtt.conv.weight':
                'roi_head.mask_head.spatial_attention.conv.weight',
            'roi_heads.mask.predictor.conv5_mask.weight': 'roi_head.mask_head.upsample.weight',
            'roi_heads.maskiou.feature_extractor.maskiou_fc2.weight': 'roi_head.mask_iou_head.fcs.1.weight',
        })
        if arch.startswith('V-'):
            spots['backbone.body.stage5.OSA5_1.ese.fc.bias'] = 'backbone.stages.3.blocks.0.attn.fc.bias'
        else:  # maskrcnn-benchmark ResNet: stem.* -> conv1 / bn1, layers as they are
            spots.update({'backbone.body.stem.bn1.running_var': 'backbone.bn1.running_var',
                          'backbone.body.layer3.5.conv2.weight': 'backbone.layer3.5.conv2.weight',
                          'backbone.body.layer4.0.downsample.1.weight': 'backbone.layer4.0.downsample.1.weight'})
        prefix = 'backbone.body.'
        # background channel 0 dropped from the class outputs of the mask and MaskIoU predictors
        assert torch.equal(ours['roi_head.mask_head.conv_logits.weight'],
                           source['roi_heads.mask.predictor.mask_fcn_logits.weight'][1:])
        assert torch.equal(ours['roi_head.mask_iou_head.fc_mask_iou.bias'],
                           source['roi_heads.maskiou.predictor.maskiou.bias'][1:])
    for src, dst in spots.items():
        assert torch.equal(ours[dst], source[src]), (src, dst)
    assert ours['bbox_head.scales.2.scale'].shape == ()
    assert ours['bbox_head.scales.2.scale'].item() == source[f'{fcos}.scales.2.scale'].item()
    if dcn_stages:
        key = 'stage4.OSA4_2.layers.3.OSA4_2_3/conv_offset.weight'
        assert torch.equal(ours['backbone.stages.2.blocks.1.layers.3.conv.conv_offset.weight'], source[prefix + key])
    if 'dw' in arch:
        key = 'stem.stem_2/dw_conv3x3.weight'
        assert torch.equal(ours['backbone.stem.1.depthwise_conv.conv.weight'], source[prefix + key])


def test_converted_model_predicts():
    layout, arch, lite, dcn, config = CASES['c2-lite-V-19-slim-dw']
    result = convert_centermask_state_dict(reference_checkpoint(layout, arch, lite, dcn))
    model = build_zoo_model(config).eval()
    model.load_state_dict(result.state_dict, strict=True)
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 160, 224)], num_items=[1], with_mask=True)
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        out = model(**data, mode='predict')[0].pred_instances
    assert out.masks.shape[1:] == (160, 224) and torch.isfinite(out.scores).all()


def c2_v19():
    return reference_checkpoint('centermask2', 'V-19-eSE', True, ())


LITE_CONFIG = config_path('centermask', 'centermask-lite_v2-19_fpn_ms-4x_coco.py')


def test_missing_key_is_named():
    source = c2_v19()
    del source['roi_heads.maskiou_head.maskiou_fc1.weight']
    with pytest.raises(CenterMaskConversionError, match=r'not covered.*roi_head\.mask_iou_head\.fcs\.0\.weight'):
        convert_for_config(dict(model=source), LITE_CONFIG)


def test_extra_key_is_named():
    source = c2_v19()
    source['roi_heads.mask_head.extra_conv.weight'] = torch.zeros(3)
    with pytest.raises(CenterMaskConversionError, match=r'roi_heads\.mask_head\.extra_conv\.weight'):
        convert_for_config(dict(model=source), LITE_CONFIG)
    source = c2_v19()
    source['proposal_generator.fcos_head.cls_tower.2.weight'] = torch.zeros(3)  # a ReLU position holds nothing
    with pytest.raises(CenterMaskConversionError, match=r'cls_tower\.2\.weight'):
        convert_centermask_state_dict(source)


def test_wrong_shape_is_named():
    source = c2_v19()
    source['proposal_generator.fcos_head.cls_logits.weight'] = torch.zeros(81, 128, 3, 3)
    with pytest.raises(CenterMaskConversionError, match=r'shape mismatch.*bbox_head\.conv_cls\.weight: checkpoint '
                                                        r'\(81, 128, 3, 3\) vs model \(80, 128, 3, 3\)'):
        convert_for_config(dict(model=source), LITE_CONFIG)


def test_non_vovnet_backbone_is_refused():
    source = c2_v19()
    source['backbone.bottom_up.res2.0.conv1.weight'] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(CenterMaskConversionError, match='not a VoVNet'):
        convert_centermask_state_dict(source)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('touch pwned_by_checkpoint',))


def test_pickled_callable_is_refused_and_never_runs(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save(dict(model=c2_v19(), trainer=_RunsCode()), path)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        load_centermask_checkpoint(str(path))
    assert not (tmp_path / 'pwned_by_checkpoint').exists() and not os.path.exists('pwned_by_checkpoint')


def test_solver_state_and_counters_are_admitted(tmp_path):
    source = c2_v19()
    path = tmp_path / 'published.pth'
    solver = dict(state={0: dict(momentum_buffer=torch.zeros(2))}, param_groups=[dict(lr=0.01, params=[0])])
    torch.save(dict(model=source, optimizer=solver, scheduler=dict(milestones=[300000, 340000], last_epoch=9),
                    iteration=359999), path)
    assert load_centermask_checkpoint(str(path)).config_name() == 'centermask-lite_v2-19_fpn_ms-4x_coco.py'


def cli(*args):
    return subprocess.run([sys.executable, 'tools/model_converters/centermask2mmdet.py', *map(str, args)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_cli_converts_and_prints_the_config(tmp_path):
    src, dst = tmp_path / 'c2.pth', tmp_path / 'ours.pth'
    torch.save(dict(model=reference_checkpoint('centermask2', 'V-39-eSE', False, (3, 4, 5))), src)
    proc = cli(src, dst)
    assert proc.returncode == 0, proc.stderr
    assert 'configs/centermask/centermask_v2-39-dcn_fpn_ms-3x_coco.py' in proc.stdout
    saved = torch.load(dst, weights_only=True)
    model = build_zoo_model('centermask_v2-39-dcn_fpn_ms-3x_coco.py')
    model.load_state_dict(saved['state_dict'], strict=True)

    bad = reference_checkpoint('centermask2', 'V-39-eSE', False, ())
    bad.pop('backbone.fpn_output5.bias')
    torch.save(bad, src)
    proc = cli(src, tmp_path / 'never.pth')
    assert proc.returncode == 1 and 'neck.fpn_convs.2.conv.bias' in proc.stderr
    assert not (tmp_path / 'never.pth').exists()
    with open(src, 'wb') as f:
        pickle.dump(_RunsCode(), f)
    proc = cli(src, tmp_path / 'never.pth')
    assert proc.returncode == 1 and 'c2.pth' in proc.stderr


def test_detectron2_resnet_layout_maps_onto_mmdet_resnet():
    """centermask2's ResNet configs (detectron2 names: res{2-5}, conv{k}.norm, shortcut) map onto mmdet's ResNet."""
    from centermask_mm.converters.resnet import convert_resnet_state_dict
    from tests.reference_layouts import resnet_shapes
    mb = resnet_shapes('R-50')
    d2 = {}
    for key, shape in mb.items():
        key = key.replace('stem.bn1', 'stem.conv1.norm').replace('downsample.0', 'shortcut')
        key = key.replace('downsample.1', 'shortcut.norm')
        for k in (1, 2, 3):
            key = key.replace(f'.bn{k}.', f'.conv{k}.norm.')
        for stage in (1, 2, 3, 4):
            key = key.replace(f'layer{stage}.', f'res{stage + 1}.')
        d2[key] = shape
    source = fill(d2)
    result = convert_resnet_state_dict(source)
    assert (result.layout, result.arch, result.backbone_cfg()) == ('detectron2', 'R-50',
                                                                   dict(type='ResNet', depth=50, style='caffe'))
    backbone = MODELS.build(dict(type='ResNet', depth=50, style='caffe'))
    backbone.load_state_dict(result.state_dict, strict=True)
    assert torch.equal(backbone.layer2[0].downsample[1].running_mean, source['res3.0.shortcut.norm.running_mean'])
    assert torch.equal(backbone.bn1.weight, source['stem.conv1.norm.weight'])
