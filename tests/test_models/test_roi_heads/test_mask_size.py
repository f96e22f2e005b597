"""Mask size (issue 24, item 1): the SAG-Mask head at 28x28 (the reference, §4.1 of docs/reference.md; default,
unchanged) or 56x56 by config, with the mask targets, the MaskIoU head's input (§6) and the paste (§4.5)
following."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.roi_heads.mask_heads import FCNMaskHead, MaskIoUHead
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmdet.testing import demo_mm_inputs
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from centermask_mm.models.roi_heads.mask_heads import CenterMaskIoUHead, SAGMaskHead
from tests.helpers import load_config, model_cfg

HEAD = dict(num_convs=2, roi_feat_size=14, in_channels=8, conv_out_channels=8, num_classes=3)
MASK_56_TOY = ('toy', 'centermask-lite_v2-19-slim-dw_fpn_mask-56_toy.py')
PARENT = ('centermask', 'centermask_v2-39_fpn_ms-3x_coco.py')
MASK_56 = ('ablations', 'centermask_v2-39_fpn_mask-56_ms-3x_coco.py')


def roi_head(config):
    cfg = model_cfg(*config)
    return MODELS.build(dict(cfg.roi_head, train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn))


def with_random_biases(head):
    """Non-zero biases everywhere (init gives zeros), so a dropped bias or ReLU changes the outputs."""
    with torch.no_grad():
        for name, param in head.named_parameters():
            if name.endswith('bias'):
                param.uniform_(-0.5, 0.5)
        head.conv_logits.weight.normal_(std=0.5)
    return head


# --- 28x28: unchanged ---------------------------------------------------------------------------------------------

#: the default (V2-39) RoI head's state dict, names and shapes, as before the mask size option: mask head = mmdet's
#: FCNMaskHead (4 convs, 2x2 deconv, logits) + SAM's conv; MaskIoU head = mmdet's MaskIoUHead
DEFAULT_ROI_HEAD_STATE = {
    **{f'mask_head.convs.{i}.conv.{p}': s for i in range(4) for p, s in (('weight', (256, 256, 3, 3)),
                                                                          ('bias', (256, )))},
    'mask_head.spatial_attention.conv.weight': (1, 2, 3, 3),
    'mask_head.upsample.weight': (256, 256, 2, 2), 'mask_head.upsample.bias': (256, ),
    'mask_head.conv_logits.weight': (80, 256, 1, 1), 'mask_head.conv_logits.bias': (80, ),
    'mask_iou_head.convs.0.weight': (256, 257, 3, 3),
    **{f'mask_iou_head.convs.{i}.weight': (256, 256, 3, 3) for i in (1, 2, 3)},
    **{f'mask_iou_head.convs.{i}.bias': (256, ) for i in range(4)},
    'mask_iou_head.fcs.0.weight': (1024, 256 * 7 * 7), 'mask_iou_head.fcs.0.bias': (1024, ),
    'mask_iou_head.fcs.1.weight': (1024, 1024), 'mask_iou_head.fcs.1.bias': (1024, ),
    'mask_iou_head.fc_mask_iou.weight': (80, 1024), 'mask_iou_head.fc_mask_iou.bias': (80, ),
}


def test_default_config_builds_the_same_roi_head_state():
    head = roi_head(PARENT)
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == DEFAULT_ROI_HEAD_STATE
    assert head.mask_head.mask_size == 28 and len(head.mask_head.extra_upsamples) == 0
    assert head.mask_iou_head.max_pool.kernel_size == 2 and head.mask_iou_head.max_pool.stride == 2


@pytest.mark.parametrize('with_sam', [True, False])
def test_default_mask_head_computes_mmdets_fcn_head_bit_for_bit(with_sam):
    """With SAM off the default head is mmdet's FCNMaskHead (same keys, same outputs bit for bit from the same
    weights); with SAM on it is FCNMaskHead's convs, SAM, FCNMaskHead's deconv + ReLU and logits."""
    head = with_random_biases(SAGMaskHead(with_sam=with_sam, **HEAD))
    fcn = FCNMaskHead(**HEAD)
    own = {k: v for k, v in head.state_dict().items() if not k.startswith('spatial_attention.')}
    assert set(own) == set(fcn.state_dict()) and len(head.state_dict()) == len(own) + int(with_sam)
    fcn.load_state_dict(own)
    x = torch.randn(3, 8, 14, 14)
    with torch.no_grad():
        out = head(x)
        if with_sam:
            y = head.spatial_attention(fcn.convs[1](fcn.convs[0](x)))
            expected = fcn.conv_logits(fcn.relu(fcn.upsample(y)))
        else:
            expected = fcn(x)
    assert out.shape == (3, 3, 28, 28) and torch.equal(out, expected)


def test_default_maskiou_head_computes_mmdets_maskiou_head_bit_for_bit():
    kw = dict(num_convs=2, num_fcs=2, roi_feat_size=14, in_channels=8, conv_out_channels=8, fc_out_channels=16,
              num_classes=3)
    ours, mmdet_head = CenterMaskIoUHead(**kw), MaskIoUHead(**kw)
    mmdet_head.load_state_dict(ours.state_dict())
    feats, masks = torch.randn(4, 8, 14, 14), torch.randn(4, 28, 28)
    with torch.no_grad():
        assert torch.equal(ours(feats, masks), mmdet_head(feats, masks))


# --- 56x56 ---------------------------------------------------------------------------------------------------------

def mask_head_56_by_definition(head, x):
    """§4.1 with a second upsampling stage: 3x3 convs + ReLU, SAM, (2x2 stride-2 deconv + ReLU) twice, logits."""
    for conv in head.convs:
        x = torch.relu(F.conv2d(x, conv.conv.weight, conv.conv.bias, padding=1))
    pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    x = x * torch.sigmoid(F.conv2d(pooled, head.spatial_attention.conv.weight, padding=1))
    for deconv in (head.upsample, head.extra_upsamples[0]):
        x = torch.relu(F.conv_transpose2d(x, deconv.weight, deconv.bias, stride=2))
    return F.conv2d(x, head.conv_logits.weight, head.conv_logits.bias)


def test_56_head_is_a_second_upsampling_stage():
    head = SAGMaskHead(mask_size=56, **HEAD)
    head.init_weights()
    (extra, ) = head.extra_upsamples
    assert isinstance(extra, torch.nn.ConvTranspose2d)
    assert (extra.in_channels, extra.out_channels, extra.kernel_size, extra.stride) == (8, 8, (2, 2), (2, 2))
    assert extra.bias.abs().sum() == 0 and extra.weight.std() > 0.1  # mmdet's upsample init (Kaiming, bias 0)
    with_random_biases(head)
    x = torch.randn(2, 8, 14, 14)
    with torch.no_grad():
        out = head(x)
    assert out.shape == (2, 3, 56, 56)
    assert torch.allclose(out, mask_head_56_by_definition(head, x), atol=1e-5)


@pytest.mark.parametrize('mask_size', [42, 20, 7])
def test_mask_size_not_reached_by_upsampling_fails(mask_size):
    with pytest.raises(ValueError, match=f'mask_size={mask_size} is not roi_feat_size=14 times a power'):
        SAGMaskHead(mask_size=mask_size, **HEAD)


def test_56_targets_are_the_gt_in_the_unclipped_roi_at_56():
    """A 32x32 GT square: a RoI on its box gives an all-foreground 56x56 target; a RoI twice as wide (reaching past
    the 64-px image) the left 28 columns."""
    head = SAGMaskHead(mask_size=56, **HEAD)
    gt = np.zeros((1, 64, 64), np.uint8)
    gt[0, 16:48, 16:48] = 1
    gts = [InstanceData(masks=BitmapMasks(gt, 64, 64), labels=torch.tensor([1]))]
    sampling = [InstanceData(pos_priors=torch.tensor([[16., 16., 48., 48.], [16., 16., 80., 48.]]),
                             pos_assigned_gt_inds=torch.tensor([0, 0]))]
    targets = head.get_targets(sampling, gts, ConfigDict(mask_size=56))
    assert targets.shape == (2, 56, 56)
    assert targets[0].eq(1).all()
    assert targets[1, :, :28].eq(1).all() and targets[1, :, 28:].eq(0).all()
    with pytest.raises(ValueError, match=r'train_cfg.rcnn.mask_size=28 differs from the mask head.s mask_size=56'):
        head.get_targets(sampling, gts, ConfigDict(mask_size=28))


def test_56_maskiou_head_max_pools_the_mask_to_its_features():
    """§6 at 56: the mask probability is max-pooled 4x4 to the 14x14 features, i.e. mmdet's 2x2 max-pool of the
    mask max-pooled 2x2 first (sigmoid and max commute); layers and keys are mmdet's."""
    kw = dict(num_convs=2, num_fcs=2, roi_feat_size=14, in_channels=8, conv_out_channels=8, fc_out_channels=16,
              num_classes=3)
    ours, mmdet_head = CenterMaskIoUHead(mask_size=56, **kw), MaskIoUHead(**kw)
    assert ours.max_pool.kernel_size == ours.max_pool.stride == 4
    mmdet_head.load_state_dict(ours.state_dict())
    feats, masks = torch.randn(4, 8, 14, 14), torch.randn(4, 56, 56)
    with torch.no_grad():
        expected = mmdet_head(feats, F.max_pool2d(masks[:, None], 2)[:, 0])
        assert torch.allclose(ours(feats, masks), expected, atol=1e-6)
    with pytest.raises(ValueError, match='mask_size=50 must be a multiple of roi_feat_size=14'):
        CenterMaskIoUHead(mask_size=50, **kw)


def test_56_configs_set_one_mask_size_everywhere():
    for config in (MASK_56, MASK_56_TOY):
        cfg = load_config(*config).model
        assert cfg.roi_head.mask_head.mask_size == cfg.roi_head.mask_iou_head.mask_size == \
            cfg.train_cfg.rcnn.mask_size == 56
    head = roi_head(MASK_56)
    assert head.mask_head.mask_size == 56 and len(head.mask_head.extra_upsamples) == 1
    state = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    added = {k: v for k, v in state.items() if k not in DEFAULT_ROI_HEAD_STATE}
    assert added == {'mask_head.extra_upsamples.0.weight': (256, 256, 2, 2),
                     'mask_head.extra_upsamples.0.bias': (256, )}
    assert {k: v for k, v in state.items() if k in DEFAULT_ROI_HEAD_STATE} == DEFAULT_ROI_HEAD_STATE


def test_56_model_trains_a_step_and_predicts_masks_of_the_original_image_size():
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(*MASK_56_TOY))
    model.init_weights()
    model.train()
    seen = {}
    model.roi_head.mask_head.register_forward_hook(lambda m, args, out: seen.update(logits=out.shape))
    model.roi_head.mask_iou_head.register_forward_pre_hook(
        lambda m, args: seen.update(iou_input=(args[0].shape[-2:], args[1].shape[-2:])))
    targets = []
    get_targets = model.roi_head.mask_head.get_targets
    model.roi_head.mask_head.get_targets = lambda *a, **k: targets.append(get_targets(*a, **k)) or targets[-1]
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128), (3, 128, 96)], num_items=[3, 2],
                            num_classes=3, with_mask=True)
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    assert {'loss_mask', 'loss_mask_iou'} <= set(losses)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    assert seen['logits'][-2:] == (56, 56) and seen['iou_input'] == ((14, 14), (56, 56))
    assert targets[0].shape[1:] == (56, 56) and targets[0].shape[0] == seen['logits'][0] > 0
    total.backward()
    mask_head = model.roi_head.mask_head
    for name in ('extra_upsamples.0.weight', 'upsample.weight', 'conv_logits.weight', 'convs.0.conv.weight'):
        grad = mask_head.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name

    model.eval()
    with torch.no_grad():  # FCOS scores 0.5 everywhere: the untrained model detects boxes
        model.bbox_head.conv_cls.bias.zero_()
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 96, 128)], num_items=[2], num_classes=3)
    with torch.no_grad():
        (sample, ) = model.test_step(packed)
    pred = sample.pred_instances
    assert len(pred) > 0 and pred.masks.dtype == torch.bool
    assert tuple(pred.masks.shape) == (len(pred), *sample.ori_shape)


def test_56_masks_are_pasted_at_their_resolution():
    """§4.5 at 56: a 56x56 mask of alternating one-pixel columns, pasted into a 56x56 box at scale 1, comes out
    column for column (a 28x28 mask could not hold the pattern)."""
    head = roi_head(MASK_56).eval()
    pattern = torch.tensor([4.0, -4.0]).repeat(28)[None, :].expand(56, 56)  # columns: on, off, on, ...
    head.mask_head.register_forward_hook(lambda m, args, out: pattern.expand_as(out).clone())
    feats = tuple(torch.rand(1, 256, 96 // s, 96 // s) for s in (8, 16, 32, 64, 128))
    results = InstanceData(bboxes=torch.tensor([[20., 10., 76., 66.]]), scores=torch.tensor([0.9]),
                           labels=torch.tensor([4]))
    meta = dict(img_shape=(96, 96), ori_shape=(96, 96), scale_factor=(1.0, 1.0))
    with torch.no_grad():
        out = head.predict_mask(feats, [meta], [results], rescale=True)[0]
    assert out.masks.shape == (1, 96, 96)
    expected = torch.zeros(96, 96, dtype=torch.bool)
    expected[10:66, 20:76] = (pattern > 0)
    assert torch.equal(out.masks[0], expected)
