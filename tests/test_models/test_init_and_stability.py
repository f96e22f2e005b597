"""Reference initialisation (findings D7), VoVNet's default init, and what happens when training cannot work:
frozen norms without pretrained weights are warned about, a non-finite loss stops training before the step."""
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from centermask_mm.models.backbones import VoVNet
from centermask_mm.models.detectors.centermask import NonFiniteLossError
from tests.helpers import model_cfg

V39 = 'centermask/centermask_v2-39_fpn_ms-3x_coco.py'


def built(config=V39, trainable_norm=True):
    cfg = model_cfg(config)
    cfg.backbone.init_cfg = None
    if trainable_norm:
        cfg.backbone.update(norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_fpn_uses_detectrons_c2_xavier_fill():
    """kaiming_uniform(a=1, fan_in): bound sqrt(3 / fan_in) (mmdet's default Xavier: sqrt(6 / (fan_in+fan_out)))."""
    model = built()
    for name, conv in [('lateral P4', model.neck.lateral_convs[1].conv), ('P7', model.neck.fpn_convs[4].conv)]:
        w = conv.weight.detach()
        bound = math.sqrt(3 / (w.shape[1] * w.shape[2] * w.shape[3]))
        assert w.abs().max() <= bound and w.abs().max() > 0.98 * bound, name
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03), name
        assert torch.count_nonzero(conv.bias) == 0


def test_maskiou_fcs_use_kaiming_normal_fan_out():
    model = built()
    for fc in model.roi_head.mask_iou_head.fcs:
        w = fc.weight.detach()
        assert w.std().item() == pytest.approx(math.sqrt(2 / w.shape[0]), rel=0.02)  # fan_out = 1024
        assert w.abs().max() > 4 * w.std()  # normal, not uniform (max/std of a uniform is sqrt(3))
        assert torch.count_nonzero(fc.bias) == 0
    assert model.roi_head.mask_iou_head.fc_mask_iou.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_vovnet_default_init_covers_ese_and_keeps_dcn_offsets_at_zero():
    backbone = VoVNet(arch='V-19-slim-eSE', dcn=dict(type='DCNv2', deform_groups=1),
                      stage_with_dcn=(False, True, True, True))
    backbone.init_weights()
    fc = backbone.stages[3].blocks[0].attn.fc.weight.detach()  # eSE: 512 -> 512 1x1 conv
    assert fc.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.03)  # Kaiming normal, fan_out
    offsets = [m.conv_offset for m in backbone.modules() if hasattr(m, 'conv_offset')]
    assert len(offsets) == 9 and all(torch.count_nonzero(o.weight) == 0 for o in offsets)


def test_frozen_norms_without_pretrained_weights_are_warned_with_the_fix():
    with pytest.warns(UserWarning, match=r"requires_grad=True.*init_cfg=dict\(type='Pretrained'"):
        built(trainable_norm=False)


def test_trainable_norms_or_pretrained_are_not_warned(recwarn, tmp_path):
    built(trainable_norm=True)
    frozen = dict(arch='V-19-slim-dw-eSE', norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True)
    checkpoint = tmp_path / 'vovnet.pth'
    torch.save(dict(state_dict=VoVNet(**frozen).state_dict()), checkpoint)
    VoVNet(**frozen, init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint))).init_weights()
    assert not [w for w in recwarn if 'frozen norm' in str(w.message)]
    with pytest.warns(UserWarning, match='frozen norm'):  # the same backbone without the checkpoint is warned
        VoVNet(**frozen).init_weights()


def test_non_finite_loss_stops_before_the_step_naming_iteration_and_loss():
    model = built('centermask/centermask-lite_v2-19_fpn_ms-4x_coco.py')
    model.train()
    real_loss = model.roi_head.loss

    def exploding(*args, **kwargs):
        losses = real_loss(*args, **kwargs)
        losses['loss_mask_iou'] = losses['loss_mask_iou'] * float('inf')
        return losses

    model.roi_head.loss = exploding
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 160)] * 2, num_items=[3, 2], num_classes=10,
                            with_mask=True)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    MessageHub.get_current_instance().update_info('iter', 41)
    with pytest.raises(NonFiniteLossError, match=r'iteration 41: .*loss_mask_iou'):
        model.train_step(packed, optim)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if 'num_batches' not in k
               and 'running' not in k)
