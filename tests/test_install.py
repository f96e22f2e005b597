"""The stack the project pins: compiled mmcv ops (these tests fail, not skip, without them), registration into
mmdet's own registries, and the `mmdet::` configs of the mmdet wheel."""
import torch


def test_mmcv_compiled_ops_run_on_cpu():
    import mmcv._ext  # noqa: F401  (ImportError = mmcv built without ops)
    from mmcv.ops import ModulatedDeformConv2dPack, RoIAlign, nms
    feats = torch.arange(16.0).view(1, 1, 4, 4)
    pooled = RoIAlign(output_size=2, spatial_scale=1.0, sampling_ratio=0, aligned=True)(
        feats, torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]]))
    assert pooled.shape == (1, 1, 2, 2) and torch.allclose(pooled.flatten(), torch.tensor([2.5, 4.5, 10.5, 12.5]))
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    dcn = ModulatedDeformConv2dPack(2, 3, 3, padding=1)
    assert dcn(torch.rand(1, 2, 5, 5)).shape == (1, 3, 5, 5)


def test_classes_live_in_mmdet_registries():
    from mmdet.registry import DATASETS, MODELS
    for name in ('VoVNet', 'CenterMask', 'CenterMaskFCOSHead', 'CenterMaskRoIHead', 'SAGMaskHead',
                 'ScaleAdaptiveRoIExtractor'):
        assert MODELS.get(name) is not None, name
        assert name in MODELS.module_dict  # registered in mmdet's node itself, not a child registry
    assert 'ToyShapesDataset' in DATASETS.module_dict


def test_mmdet_prefixed_config_resolves():
    from tests.helpers import load_config
    cfg = load_config('vovnet', 'mask-rcnn_v2-39_fpn_1x_coco.py')
    assert cfg.model.type == 'MaskRCNN' and cfg.model.backbone.type == 'VoVNet'
    assert 'depth' not in cfg.model.backbone  # _delete_ replaced ResNet's options
    assert cfg.custom_imports.imports == ['centermask_mm']
