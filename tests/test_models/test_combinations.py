"""Our components in mmdet's detectors, mmdet's heads in CenterMask: every combination the docs claim, run here.

Each entry of :data:`COMBINATIONS` is a config of the repository (with test-size overrides) that combines some of
our components with an mmdet detector or head; the test builds it, trains one step (losses finite, backward reaches
the components) and predicts masks. The table in docs/user_guides/combinations.md is rendered from the same list
(:func:`render_table`) and compared with the file, so that it cannot claim a combination this test does not run.

Extra checks by kind:

* ``'eq2'``: the RoIs each pyramid level pools in the mask branch are the ones Eq. 2 (ref §5) assigns to it,
  computed here from the RoIs and the image sizes of the batch (two sizes, so the padded batch differs from each
  image), and at least one of them goes to another level than mmdet's canonical-scale rule would choose;
* ``'box_stage'``: the mmdet head is CenterMask's box stage with its own losses and its assigner built from
  ``train_cfg.rpn``.
"""
import math
import re
from collections import namedtuple

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub

from tests.helpers import REPO_ROOT, apply_dotted, model_cfg

Combination = namedtuple('Combination', 'host components config kind overrides')

CENTERMASK = 'CenterMask (detector, mask branch)'
VOVNET, EQ2, SAG = 'VoVNetV2 (backbone)', 'ScaleAdaptiveRoIExtractor (Eq. 2)', 'SAGMaskHead'
CENTERMASK_CFG = 'centermask/centermask_v2-39_fpn_ms-3x_coco.py'

#: (mmdet host, our components it runs with, config, kind, dotted overrides of the model config)
COMBINATIONS = [
    Combination('Mask R-CNN', (VOVNET, EQ2, SAG), 'scale_adaptive_rois/mask-rcnn-sag-mask_v2-39_fpn_eq2_1x_coco.py',
                'eq2', {}),
    Combination('Cascade Mask R-CNN', (VOVNET, EQ2), 'scale_adaptive_rois/cascade-mask-rcnn_v2-39_fpn_eq2_1x_coco.py',
                'eq2', {}),
    Combination('MS R-CNN', (VOVNET, EQ2), 'scale_adaptive_rois/ms-rcnn_v2-39_fpn_eq2_1x_coco.py', 'eq2', {}),
    Combination('ATSSHead', (CENTERMASK, VOVNET, EQ2, SAG),
                'centermask_box_stages/centermask-atss_v2-39_fpn_ms-3x_coco.py', 'box_stage', {}),
    Combination('GFLHead', (CENTERMASK, VOVNET, EQ2, SAG),
                'centermask_box_stages/centermask-gfl_v2-39_fpn_ms-3x_coco.py', 'box_stage', {}),
    Combination('RetinaHead', (CENTERMASK, VOVNET, EQ2, SAG),
                'centermask_box_stages/centermask-retinanet_v2-39_fpn_ms-3x_coco.py', 'box_stage', {}),
    Combination('TOODHead', (CENTERMASK, VOVNET, EQ2, SAG),
                'centermask_box_stages/centermask-tood_v2-39_fpn_ms-3x_coco.py', 'box_stage', {}),
    Combination('FCOSHead', (CENTERMASK, VOVNET, EQ2, SAG), CENTERMASK_CFG, 'box_stage',
                {'bbox_head.type': 'FCOSHead'}),
    Combination('MaskPointHead (PointRend)', (CENTERMASK, VOVNET, EQ2, SAG),
                'ablations/centermask_v2-39_fpn_point-rend_ms-3x_coco.py', 'plain', {}),
    Combination('FCNMaskHead', (CENTERMASK, VOVNET, EQ2), CENTERMASK_CFG, 'plain',
                {'roi_head.mask_head.type': 'FCNMaskHead', 'roi_head.mask_head.clip_target_rois': None}),
]
#: the box stage's own loss keys, by mmdet head
BOX_STAGE_LOSSES = {'ATSSHead': {'loss_cls', 'loss_bbox', 'loss_centerness'},
                    'GFLHead': {'loss_cls', 'loss_bbox', 'loss_dfl'}, 'RetinaHead': {'loss_cls', 'loss_bbox'},
                    'TOODHead': {'loss_cls', 'loss_bbox'}, 'FCOSHead': {'loss_cls', 'loss_bbox', 'loss_centerness'}}
#: (attribute, type) of the assigner each box stage builds from train_cfg.rpn (FCOS assigns by itself); TOOD's
#: task-aligned one, which initial_epoch=0 selects from the first step
BOX_STAGE_ASSIGNERS = {'ATSSHead': ('assigner', 'ATSSAssigner'), 'GFLHead': ('assigner', 'ATSSAssigner'),
                       'RetinaHead': ('assigner', 'MaxIoUAssigner'),
                       'TOODHead': ('alignment_assigner', 'TaskAlignedAssigner')}
IMAGE_SHAPES = [(3, 96, 96), (3, 64, 96)]  # two sizes: the padded batch is larger than the second image
NUM_CLASSES = 4

DOCS = REPO_ROOT + '/docs/user_guides/combinations.md'
BEGIN, END = '<!-- combinations table: begin (rendered by tests/test_models/test_combinations.py) -->', \
    '<!-- combinations table: end -->'


def render_table(combinations=COMBINATIONS):
    """Markdown table: a row per component of ours, a column per mmdet detector or head, a mark where run."""
    hosts = list(dict.fromkeys(c.host for c in combinations))
    components = list(dict.fromkeys(name for c in combinations for name in c.components))
    lines = ['| ours \\ mmdet | ' + ' | '.join(hosts) + ' |', '|---|' + '---|' * len(hosts)]
    for name in components:
        marks = ['✓' if any(c.host == host and name in c.components for c in combinations) else ''
                 for host in hosts]
        lines.append(f'| {name} | ' + ' | '.join(marks) + ' |')
    return '\n'.join(lines)


def build_combination(combination):
    """The combination's model at test size: its config with a 3-class head count, no pretrained weights and the
    slim VoVNetV2-19 (the components around the backbone are the config's)."""
    cfg = model_cfg(*combination.config.split('/'))
    cfg.backbone.update(arch='V-19-slim-dw-eSE', init_cfg=None, frozen_stages=-1,
                        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False)
    slim = [112, 256, 384, 512]
    cfg.neck.in_channels = slim[-len(cfg.neck.in_channels):]
    apply_dotted(cfg, combination.overrides)
    if cfg.type == 'CenterMask':
        cfg.num_classes = NUM_CLASSES
    else:
        set_num_classes(cfg.roi_head, NUM_CLASSES)
    # CPU test size: fewer proposals and sampled RoIs, fewer test detections (cascade stages: a list of cfgs)
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    for stage in cfg.train_cfg.rcnn if isinstance(cfg.train_cfg.rcnn, list) else [cfg.train_cfg.rcnn]:
        stage.sampler.num = 64
    cfg.test_cfg.rpn.update(nms_pre=200, max_per_img=min(cfg.test_cfg.rpn.max_per_img, 50))
    if 'max_per_img' in cfg.test_cfg.rcnn:
        cfg.test_cfg.rcnn.max_per_img = 20
    return MODELS.build(cfg)


def set_num_classes(node, num_classes):
    """Every ``num_classes`` in an mmdet RoI head config (box heads of each cascade stage, mask heads...)."""
    if isinstance(node, dict):
        if 'num_classes' in node:
            node['num_classes'] = num_classes
        for value in node.values():
            set_num_classes(value, num_classes)
    elif isinstance(node, list):
        for value in node:
            set_num_classes(value, num_classes)


def batch(model, mode):
    packed = demo_mm_inputs(batch_size=2, image_shapes=IMAGE_SHAPES, num_items=[3, 2], num_classes=NUM_CLASSES,
                            with_mask=True)
    return model.data_preprocessor(packed, mode == 'loss')


def eq2_levels(rois, img_shapes):
    """Eq. 2 with k_max = 5 on P2..P5 (level index 0 = P2), written out: k = ceil(5 - log2(A_img / A_roi))."""
    levels = []
    for roi in rois.tolist():
        h, w = img_shapes[int(roi[0])]
        k = math.ceil(5 - math.log2(h * w / ((roi[3] - roi[1]) * (roi[4] - roi[2]))))
        levels.append(min(max(k, 2), 5) - 2)
    return torch.tensor(levels)


def mask_rcnn_levels(rois):
    """mmdet's canonical-scale rule on P2..P5: floor(log2(sqrt(A_roi) / 56)), clamped."""
    return torch.tensor([min(max(math.floor(math.log2(math.sqrt((r[3] - r[1]) * (r[4] - r[2])) / 56 + 1e-6)), 0), 3)
                         for r in rois.tolist()])


def record_mask_levels(model):
    """Hooks on every ScaleAdaptiveRoIExtractor of the model: the RoIs it gets and the RoIs each level pools."""
    records = []
    for extractor in (m for m in model.modules() if type(m).__name__ == 'ScaleAdaptiveRoIExtractor'):
        record = dict(rois=[], pooled={i: [] for i in range(len(extractor.roi_layers))})
        extractor.register_forward_pre_hook(lambda m, args, r=record: r['rois'].append(args[1].detach().clone()))
        for i, layer in enumerate(extractor.roi_layers):
            layer.register_forward_pre_hook(
                lambda m, args, r=record, i=i: r['pooled'][i].append(args[1].detach().clone()))
        records.append(record)
    return records


@pytest.fixture
def epoch_info():
    """TOOD reads the epoch from the message hub (the runner's RuntimeInfoHook sets it; no runner here)."""
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', 0)
    yield
    hub.runtime_info.pop('epoch', None)


@pytest.mark.parametrize('combination', COMBINATIONS, ids=lambda c: f'{c.host}-{c.config.split("/")[-1]}')
def test_combination_trains_a_step_and_predicts_masks(combination, epoch_info):
    torch.manual_seed(0)
    model = build_combination(combination)
    model.init_weights()
    model.train()
    records = record_mask_levels(model)

    data = batch(model, 'loss')
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)  # (RPN and cascade losses are lists)
    assert torch.isfinite(total)
    total.backward()
    mask_heads = [m for m in model.modules() if type(m).__name__ in ('SAGMaskHead', 'FCNMaskHead')]
    assert mask_heads and all(h.conv_logits.weight.grad is not None for h in mask_heads)

    if combination.kind == 'box_stage':
        head = model.bbox_head
        assert type(head).__name__ == combination.host
        assert BOX_STAGE_LOSSES[combination.host] | {'loss_mask', 'loss_mask_iou'} == set(losses)
        assert all(p.grad is not None for p in head.parameters() if p.requires_grad)
        if combination.host in BOX_STAGE_ASSIGNERS:
            attribute, expected = BOX_STAGE_ASSIGNERS[combination.host]
            assert type(getattr(head, attribute)).__name__ == expected
        else:
            assert head.train_cfg is None
    if combination.kind == 'eq2':
        img_shapes = [s[1:] for s in IMAGE_SHAPES]
        assert records, 'no ScaleAdaptiveRoIExtractor ran'
        differs = False
        for record in records:
            rois = torch.cat(record['rois'])
            expected = eq2_levels(rois, img_shapes)
            for level, pooled in record['pooled'].items():
                got = torch.cat(pooled) if pooled else rois.new_zeros((0, 5))
                assert torch.equal(got, rois[expected == level]), f'level {level}'
            differs = differs or bool((expected != mask_rcnn_levels(rois)).any())
        assert differs, 'no RoI where Eq. 2 and the Mask R-CNN rule differ: the check would not see the rule'

    model.eval()
    with torch.no_grad():
        results = model(**batch(model, 'predict'), mode='predict')
    for sample, shape in zip(results, IMAGE_SHAPES):
        pred = sample.pred_instances
        assert pred.masks.shape == (len(pred), *shape[1:]) and pred.masks.dtype == torch.bool
        assert pred.bboxes.shape == (len(pred), 4)


def test_docs_table_is_the_tested_combinations():
    with open(DOCS, encoding='utf-8') as f:
        text = f.read()
    found = re.search(re.escape(BEGIN) + r'\n(.*?)\n' + re.escape(END), text, re.S)
    assert found, f'{DOCS} has no {BEGIN!r} ... {END!r} block'
    assert found.group(1).strip() == render_table(), f'the table in {DOCS} should be:\n{render_table()}'


@pytest.mark.parametrize('head_type, train_cfg_has_rpn, message', [
    ('ATSSHead', False, 'ATSSHead builds its training target assigner from its train_cfg'),
    ('RPNHead', True, 'RPNHead proposes class-agnostic boxes'),
    ('SOLOV2Head', True, 'SOLOV2Head is not an mmdet dense head'),
])
def test_box_stage_that_cannot_serve_fails_at_build(head_type, train_cfg_has_rpn, message):
    cfg = model_cfg(*'centermask_box_stages/centermask-atss_v2-39_fpn_ms-3x_coco.py'.split('/'))
    cfg.bbox_head.type = head_type
    if not train_cfg_has_rpn:
        cfg.train_cfg.pop('rpn')
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg)


def test_eq2_extractor_without_image_shapes_names_the_fix():
    """A plain mmdet RoI head with the Eq. 2 extractor: the error says how to build the head."""
    cfg = model_cfg('scale_adaptive_rois', 'mask-rcnn_v2-39_fpn_eq2_1x_coco.py')
    cfg.roi_head.type = 'StandardRoIHead'
    cfg.roi_head.pop('base')
    cfg.backbone.init_cfg = None
    model = MODELS.build(cfg).train()
    with pytest.raises(ValueError, match="roi_head=dict\\(type='ImageShapesRoIHead', base='StandardRoIHead'"):
        model(**batch(model, 'loss'), mode='loss')
