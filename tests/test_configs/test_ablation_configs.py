"""Each ablation config (configs/ablations/) differs from its parent in the switched component only: the two built
models have the same module types and own-parameter counts everywhere except the switched modules (every one of
them differs, nothing else does), and the two model configs differ only under the switched key. Each switch also
reaches the built model's outputs: the Eq. 2 levels for k_max (§5), the OSA block for attention and identity
mapping (§2), the mask logits for SAM (§4.1), the mask scores for MaskIoU (§6)."""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

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


# A_roi = A_img / 2**(j + 1/2), j = 0..3, in a 256 x 256 image: Eq. 2 gives k = ceil(k_max - j - 1/2) = k_max - j,
# clamped to the pooled P3..P5 (§5); the level index (0 = P3) for each k_max, by hand:
K_MAX_LEVELS = {5: [2, 1, 0, 0], 6: [2, 2, 1, 0], 7: [2, 2, 2, 1]}


@pytest.mark.parametrize('config, k_max', [(PARENT, 5),
                                           (('ablations', 'centermask_v2-39_fpn_kmax-6_ms-3x_coco.py'), 6),
                                           (('ablations', 'centermask_v2-39_fpn_kmax-7_ms-3x_coco.py'), 7)],
                         ids=['parent', 'kmax-6', 'kmax-7'])
def test_k_max_reaches_the_level_rule(config, k_max):
    """§5: the model built from the config pools each RoI from the level its k_max gives: the same boxes go to
    other levels under k_max 5, 6 and 7."""
    extractor = build(config)[1].roi_head.mask_roi_extractor.eval()
    feats = tuple(torch.full((1, 256, 256 // s, 256 // s), float(i + 1)) for i, s in enumerate((8, 16, 32)))
    heights = [256 / 2**(j + 0.5) for j in range(4)]
    rois = torch.tensor([[0., 0., 0., 256., h] for h in heights])
    for j, h in enumerate(heights):  # the expected levels follow from the rule written out
        assert min(max(math.ceil(k_max - math.log2(256 * 256 / (256 * h))), 3), 5) - 3 == K_MAX_LEVELS[k_max][j]
    with torch.no_grad():
        out = extractor(feats, rois, img_shapes=[(256, 256)])
    assert out.mean((1, 2, 3)).tolist() == pytest.approx([level + 1. for level in K_MAX_LEVELS[k_max]])


def test_k_max_below_the_pooled_levels_fails_with_the_choices():
    cfg = dict(type='ScaleAdaptiveRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=14), out_channels=8,
               featmap_strides=[8, 16, 32], k_max=4)
    with pytest.raises(ValueError, match=r'invalid k_max=4; valid choices are None .* or an int >= 5'):
        MODELS.build(cfg)


def test_with_sam_must_be_a_bool():
    with pytest.raises(ValueError, match=r'invalid with_sam=.*valid choices are \[True, False\]'):
        MODELS.build(dict(type='SAGMaskHead', num_convs=1, in_channels=8, conv_out_channels=8, num_classes=2,
                          with_sam='no'))


def osa_block_by_definition(block, x, attn, residual):
    """§2: conv units in sequence, concatenation of the input and every unit's output, the 1x1 concat unit, then
    the attention (``'ese'``: hard-sigmoid gate of one 1x1 conv with bias on the pooled map; ``'se'``: two 1x1
    convs with ReLU then the logistic sigmoid; None: nothing), then ``+ x`` when ``residual``."""
    def unit(m, t):
        return torch.relu(m.bn(m.conv(t)))

    feats, y = [x], x
    for layer in block.layers:
        y = unit(layer, y)
        feats.append(y)
    z = unit(block.conv_concat, torch.cat(feats, 1))
    pooled = z.mean((2, 3), keepdim=True)
    if attn == 'ese':
        z = z * F.relu6(F.conv2d(pooled, block.attn.fc.weight, block.attn.fc.bias) + 3) / 6
    elif attn == 'se':
        hidden = torch.relu(F.conv2d(pooled, block.attn.conv1.conv.weight, block.attn.conv1.conv.bias))
        z = z * torch.sigmoid(F.conv2d(hidden, block.attn.conv2.conv.weight, block.attn.conv2.conv.bias))
    return z + x if residual else z


@pytest.mark.parametrize('config, attn, residual', [
    (PARENT, 'ese', True),
    (('ablations', 'centermask_v2-39-se_fpn_ms-3x_coco.py'), 'se', True),
    (('ablations', 'centermask_v2-39-noattn_fpn_ms-3x_coco.py'), None, True),
    (('ablations', 'centermask_v2-39-nores_fpn_ms-3x_coco.py'), 'ese', False),
    (('ablations', 'centermask_v1-39_fpn_ms-3x_coco.py'), None, False),
], ids=['parent', 'se', 'noattn', 'nores', 'v1'])
def test_backbone_switches_reach_the_block_output(config, attn, residual):
    """The second block of stage 4 (one with an identity mapping in V2-39, §1.2) computes what the config's
    attention and residual switches say."""
    block = build(config)[1].backbone.stages[2].blocks[1].eval()
    x = torch.randn(1, 768, 3, 3)
    with torch.no_grad():
        assert torch.allclose(block(x), osa_block_by_definition(block, x, attn, residual), atol=1e-5)


def mask_head_by_definition(head, x, with_sam):
    """§4.1: 3x3 convs with ReLU, then (SAM) ``x * sigmoid(conv3x3([mean_c, max_c]))``, the 2x2 stride-2 deconv
    with ReLU, the 1x1 class logits."""
    for conv in head.convs:
        x = torch.relu(F.conv2d(x, conv.conv.weight, conv.conv.bias, padding=1))
    if with_sam:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        x = x * torch.sigmoid(F.conv2d(pooled, head.spatial_attention.conv.weight, padding=1))
    x = torch.relu(F.conv_transpose2d(x, head.upsample.weight, head.upsample.bias, stride=2))
    return F.conv2d(x, head.conv_logits.weight, head.conv_logits.bias)


@pytest.mark.parametrize('config, with_sam', [(PARENT, True),
                                              (('ablations', 'centermask_v2-39_fpn_no-sam_ms-3x_coco.py'), False)],
                         ids=['parent', 'no-sam'])
def test_sam_switch_reaches_the_mask_logits(config, with_sam):
    head = build(config)[1].roi_head.mask_head
    x = torch.randn(1, 256, 14, 14)
    with torch.no_grad():
        out = head(x)
        assert torch.allclose(out, mask_head_by_definition(head, x, with_sam), atol=1e-5)


@pytest.mark.parametrize('config, with_iou', [(PARENT, True),
                                              (('ablations', 'centermask_v2-39_fpn_no-maskiou_ms-3x_coco.py'), False)],
                         ids=['parent', 'no-maskiou'])
def test_maskiou_switch_reaches_the_scores_and_losses(config, with_iou):
    """§6: with the MaskIoU head the mask scores are box score * predicted IoU (here a known 0.5 for every class);
    without it they are the box scores and there is no MaskIoU loss."""
    from mmengine.structures import InstanceData
    from types import SimpleNamespace
    roi_head = build(config)[1].roi_head.eval()
    if with_iou:
        head = roi_head.mask_iou_head
        head.fc_mask_iou.weight.data.zero_()
        head.fc_mask_iou.bias.data.fill_(0.5)
    feats = tuple(torch.rand(1, 256, 64 // s, 64 // s) for s in (8, 16, 32, 64, 128))
    results = InstanceData(bboxes=torch.tensor([[4., 4., 40., 30.], [10., 20., 60., 60.]]),
                           scores=torch.tensor([0.8, 0.3]), labels=torch.tensor([1, 6]))
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))
    with torch.no_grad():
        out = roi_head.predict(feats, [results], [SimpleNamespace(metainfo=meta)])[0]
    assert out.mask_scores.tolist() == pytest.approx([0.4, 0.15] if with_iou else [0.8, 0.3])
