"""Cross-component checks: a CenterMask config whose components do not fit together fails when the model is built,
with a ValueError naming the offending keys and the values found and expected."""
import pytest
from mmdet.registry import MODELS

from tests.helpers import build_with, model_cfg


def test_neck_in_channels_must_match_the_backbone():
    # V-39-eSE channels with the slim backbone
    with pytest.raises(ValueError) as error:
        build_with(**{'neck.in_channels': [512, 768, 1024]})
    message = str(error.value)
    assert 'model.neck.in_channels=[512, 768, 1024]' in message
    assert "arch='V-19-slim-dw-eSE' out_indices=(1, 2, 3)" in message
    assert 'expected model.neck.in_channels=[256, 384, 512]' in message


def test_neck_in_channels_follow_out_indices():
    # four stages out, the FPN still configured for three
    with pytest.raises(ValueError, match=r'expected model.neck.in_channels=\[112, 256, 384, 512\]'):
        build_with(**{'backbone.out_indices': (0, 1, 2, 3)})
    model = build_with(**{'backbone.out_indices': (0, 1, 2, 3), 'neck.in_channels': [112, 256, 384, 512],
                          'neck.start_level': 1})
    assert model.neck.backbone_end_level == 4


@pytest.mark.parametrize('key', ['roi_head.mask_head.num_classes', 'roi_head.mask_iou_head.num_classes',
                                 'bbox_head.num_classes'])
def test_heads_must_agree_on_num_classes(key):
    with pytest.raises(ValueError) as error:
        build_with(**{key: 80})
    message = str(error.value)
    assert f'model.{key}=80' in message
    others = {'bbox_head.num_classes', 'roi_head.mask_head.num_classes', 'roi_head.mask_iou_head.num_classes'} - {key}
    assert all(f'model.{other}=3' in message for other in others)
    assert 'expected every num_classes = ' in message


def test_class_agnostic_mask_head_is_exempt():
    model = build_with(**{'roi_head.mask_head.num_classes': 80, 'roi_head.mask_head.class_agnostic': True})
    assert model.roi_head.mask_head.class_agnostic


@pytest.mark.parametrize('strides', [[16, 32, 64], [8, 16, 32, 64, 128, 256], [4, 8, 16]])
def test_roi_extractor_strides_must_be_neck_levels(strides):
    with pytest.raises(ValueError) as error:
        build_with(**{'roi_head.mask_roi_extractor.featmap_strides': strides})
    message = str(error.value)
    assert f'model.roi_head.mask_roi_extractor.featmap_strides={strides}' in message
    assert 'the neck produces strides [8, 16, 32, 64, 128]' in message
    assert 'prefix of [8, 16, 32, 64, 128]' in message


def test_roi_extractor_strides_follow_the_neck():
    """Fewer neck levels (no P6/P7): [8, 16, 32] still fits, [8, 16, 32, 64] does not."""
    with pytest.raises(ValueError, match=r'the neck produces strides \[8, 16, 32\]'):
        build_with(**{'neck.num_outs': 3, 'bbox_head.strides': [8, 16, 32],
                      'bbox_head.regress_ranges': ((-1, 64), (64, 128), (128, 1e8)),
                      'roi_head.mask_roi_extractor.featmap_strides': [8, 16, 32, 64]})
    model = build_with(**{'neck.num_outs': 3, 'bbox_head.strides': [8, 16, 32],
                          'bbox_head.regress_ranges': ((-1, 64), (64, 128), (128, 1e8))})
    assert model.neck.num_outs == 3


def test_fcos_strides_must_be_the_neck_levels():
    with pytest.raises(ValueError, match=r'expected model.bbox_head.strides=\[8, 16, 32, 64, 128\]'):
        build_with(**{'bbox_head.strides': [4, 8, 16, 32, 64]})


@pytest.mark.parametrize('key', ['bbox_head.in_channels', 'roi_head.mask_roi_extractor.out_channels'])
def test_head_input_channels_must_be_the_neck_channels(key):
    with pytest.raises(ValueError, match=rf'model.{key}=256 differs from model.neck.out_channels=128.*'
                                         rf'expected model.{key}=128'):
        build_with(**{key: 256})


def test_resnet_backbone_is_checked_too():
    cfg = model_cfg('centermask', 'centermask-lite_r-50_fpn_ms-4x_coco_maskrcnn-benchmark.py')
    cfg.backbone.init_cfg = None
    cfg.neck.in_channels = [256, 512, 1024]
    with pytest.raises(ValueError, match=r"ResNet depth=50 out_indices=\(1, 2, 3\).*"
                                         r'expected model.neck.in_channels=\[512, 1024, 2048\]'):
        MODELS.build(cfg)
