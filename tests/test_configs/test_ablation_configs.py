"""Each ablation config (configs/ablations/) differs from its parent in the switched component only: the two built
models have the same module types and own-parameter counts everywhere except the switched modules (every one of
them differs, nothing else does), and the two model configs differ only under the switched key."""
import math
import re

import pytest
import torch
from mmdet.registry import MODELS

from centermask_mm.models.roi_heads import scale_adaptive_levels
from tests.helpers import model_cfg

PARENT = ('centermask', 'centermask_v2-39_fpn_ms-3x_coco.py')
ATTN = r'backbone\.stages\.\d\.blocks\.\d+\.attn(\..*)?'
DCN = r'backbone\.stages\.[123]\.blocks\.\d+\.layers\.\d+\.conv(\..*)?'
# config -> (config key that may differ, regex of the module names that must differ: all of them, and only them)
ABLATIONS = {
    ('ablations', 'centermask_v2-39-se_fpn_ms-3x_coco.py'): ('backbone.attn', ATTN),
    ('ablations', 'centermask_v2-39-noattn_fpn_ms-3x_coco.py'): ('backbone.attn', ATTN),
    ('ablations', 'centermask_v2-39-nores_fpn_ms-3x_coco.py'): ('backbone.residual', None),
    ('ablations', 'centermask_v1-39_fpn_ms-3x_coco.py'): ('backbone.arch', ATTN),
    ('ablations', 'centermask_v2-39_fpn_no-sam_ms-3x_coco.py'):
        ('roi_head.mask_head.with_sam', r'roi_head\.mask_head\.spatial_attention(\..*)?'),
    ('ablations', 'centermask_v2-39_fpn_no-maskiou_ms-3x_coco.py'):
        ('roi_head.mask_iou_head', r'roi_head\.mask_iou_head(\..*)?'),
    ('ablations', 'centermask_v2-39_fpn_mask-rcnn-level_ms-3x_coco.py'):
        ('roi_head.mask_roi_extractor', r'roi_head\.mask_roi_extractor'),
    ('ablations', 'centermask_v2-39_fpn_kmax-6_ms-3x_coco.py'): ('roi_head.mask_roi_extractor.k_max', None),
    ('ablations', 'centermask_v2-39_fpn_kmax-7_ms-3x_coco.py'): ('roi_head.mask_roi_extractor.k_max', None),
    # DCN on stages 3-5 is a zoo config (centermask2 publishes it), not repeated under ablations/
    ('centermask', 'centermask_v2-39-dcn_fpn_ms-3x_coco.py'): ('backbone.', DCN),
}
_built = {}


def build(config):
    if config not in _built:
        cfg = model_cfg(*config)
        cfg.backbone.init_cfg = None
        _built[config] = (cfg, MODELS.build(cfg))
    return _built[config]


def flatten(cfg, prefix=''):
    items = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            items.update(flatten(value, f'{prefix}{key}.'))
        else:
            items[f'{prefix}{key}'] = value
    return items


def module_signature(model):
    return {name: (type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False)))
            for name, m in model.named_modules()}


@pytest.mark.parametrize('config', list(ABLATIONS), ids=lambda c: c[1])
def test_ablation_differs_only_in_the_switched_component(config):
    key, differing = ABLATIONS[config]
    parent_cfg, parent = build(PARENT)
    cfg, model = build(config)
    changed = {k for k in flatten(parent_cfg).keys() | flatten(cfg).keys()
               if flatten(parent_cfg).get(k, '<absent>') != flatten(cfg).get(k, '<absent>')}
    assert changed and all(k.startswith(key) for k in changed), changed
    a, b = module_signature(parent), module_signature(model)
    diff = {n for n in a.keys() | b.keys() if a.get(n) != b.get(n)}
    if differing is None:  # a behaviour switch: the same modules, checked by the tests below
        assert diff == set()
        return
    # the switched modules (the pattern without its sub-module suffix) all differ, and nothing outside them does
    roots = {n for n in a.keys() | b.keys() if re.fullmatch(differing.replace(r'(\..*)?', ''), n)}
    assert roots and roots <= diff
    assert all(re.fullmatch(differing, n) for n in diff), sorted(n for n in diff if not re.fullmatch(differing, n))


def test_residual_off_and_v1_have_no_identity_mapping():
    blocks = lambda m: [b for s in m.backbone.stages for b in s.blocks]  # noqa: E731
    assert any(b.residual for b in blocks(build(PARENT)[1]))
    for name in ('centermask_v2-39-nores_fpn_ms-3x_coco.py', 'centermask_v1-39_fpn_ms-3x_coco.py'):
        assert not any(b.residual for b in blocks(build(('ablations', name))[1]))


def test_se_and_no_attention_swap_the_attention_module():
    types = lambda m: {type(b.attn).__name__ for s in m.backbone.stages for b in s.blocks}  # noqa: E731
    assert types(build(PARENT)[1]) == {'EffectiveSELayer'}
    assert types(build(('ablations', 'centermask_v2-39-se_fpn_ms-3x_coco.py'))[1]) == {'SELayer'}
    assert types(build(('ablations', 'centermask_v2-39-noattn_fpn_ms-3x_coco.py'))[1]) == {'NoneType'}


def test_mask_rcnn_level_rule_maps_224_px_to_p4():
    """finest_scale=112 on P3-P5 is Mask R-CNN's k = floor(4 + log2(sqrt(wh) / 224)) clamped to 3..5."""
    model = build(('ablations', 'centermask_v2-39_fpn_mask-rcnn-level_ms-3x_coco.py'))[1]
    extractor = model.roi_head.mask_roi_extractor
    assert type(extractor).__name__ == 'SingleRoIExtractor' and list(extractor.featmap_strides) == [8, 16, 32]
    sides = torch.tensor([8., 50., 111., 113., 200., 223., 225., 300., 447., 449., 800., 1200.])
    rois = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], 1)
    levels = extractor.map_roi_levels(rois, num_levels=3)
    expected = [min(max(math.floor(4 + math.log2(s / 224)), 3), 5) - 3 for s in sides.tolist()]
    assert levels.tolist() == expected
    assert sorted(set(expected)) == [0, 1, 2]  # every level reached
    mmdet_default = MODELS.build(dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=14),
                                      out_channels=256, featmap_strides=[8, 16, 32]))
    assert mmdet_default.map_roi_levels(rois, num_levels=3).tolist() != expected  # 56 would be P2-P5's rule


@pytest.mark.parametrize('k_max', [6, 7])
def test_k_max_variants(k_max):
    extractor = build(('ablations', f'centermask_v2-39_fpn_kmax-{k_max}_ms-3x_coco.py'))[1].roi_head.mask_roi_extractor
    assert (extractor.k_min, extractor.k_max, extractor.top_level) == (3, k_max, 5)
    assert build(PARENT)[1].roi_head.mask_roi_extractor.k_max == 5
    img_area = 800. * 1216.
    # A_roi = A_img / 2**j: Eq. 2 gives k = k_max - j, clamped to the pooled 3..5
    for j in range(0, 8):
        side = math.sqrt(img_area / 2**j)
        rois = torch.tensor([[0., 0., 0., side, side]], dtype=torch.float64)
        level = scale_adaptive_levels(rois, torch.tensor([img_area]), extractor.k_min, extractor.k_max,
                                      extractor.top_level)
        assert level.item() == min(max(k_max - j, 3), 5) - 3


def test_k_max_below_the_pooled_levels_fails_with_the_choices():
    cfg = dict(type='ScaleAdaptiveRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=14), out_channels=8,
               featmap_strides=[8, 16, 32], k_max=4)
    with pytest.raises(ValueError, match=r'invalid k_max=4; valid choices are None .* or an int >= 5'):
        MODELS.build(cfg)


def test_with_sam_must_be_a_bool():
    with pytest.raises(ValueError, match=r'invalid with_sam=.*valid choices are \[True, False\]'):
        MODELS.build(dict(type='SAGMaskHead', num_convs=1, in_channels=8, conv_out_channels=8, num_classes=2,
                          with_sam='no'))
