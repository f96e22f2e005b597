"""The export path's traceable variants compute what the PyTorch path computes (same values, in PyTorch)."""

import mmcv.ops
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from centermask_mm.deployment import TorchvisionRoIAlign, export_onnx, traceable_ops
from centermask_mm.models.roi_heads.roi_extractors.scale_adaptive_roi_extractor import image_areas
from centermask_mm.models.utils import tracing
from tests.helpers import model_cfg

LITE = ('toy', 'centermask-lite_v2-19-slim-dw_fpn_toy.py')


def random_boxes(n, size=100.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g), torch.randint(0, 3, (n, ), generator=g)


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_torchvision_roi_align_equals_mmcv(aligned, sampling_ratio):
    feats = torch.randn(2, 8, 20, 24)
    boxes, _, _ = random_boxes(30, size=150)
    rois = torch.cat([torch.randint(0, 2, (30, 1)).float(), boxes], 1)
    mmcv_layer = mmcv.ops.RoIAlign(7, spatial_scale=1 / 8, sampling_ratio=sampling_ratio, aligned=aligned)
    expected = mmcv_layer(feats, rois)
    got = TorchvisionRoIAlign.from_mmcv(mmcv_layer)(feats, rois)
    assert got.shape == (30, 8, 7, 7)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_image_areas_from_tensors_equal_those_from_tuples():
    rois = torch.zeros(3, 5)
    shapes = [(800, 1333, 3), (77, 128)]
    expected = image_areas(shapes, rois)
    got = image_areas([torch.tensor(s[:2]) for s in shapes], rois)
    assert torch.equal(expected, torch.tensor([800. * 1333, 77. * 128])) and torch.equal(got, expected)


@pytest.fixture(scope='module')
def lite_model():
    """CenterMask-Lite (toy config) with random weights and a zero classification bias: detections everywhere."""
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(*LITE))
    model.init_weights()
    torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)
    return model.eval()


def predict(model, inputs, img_shape):
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=img_shape, ori_shape=img_shape, scale_factor=(1.0, 1.0),
                                         pad_shape=tuple(inputs.shape[-2:])))
    with torch.no_grad():
        return model.predict(inputs, [sample])[0].pred_instances


def test_predict_with_the_traceable_variants_is_identical(lite_model, monkeypatch):
    """torchvision RoIAlign + the FCOS head's tracing branches (forced in PyTorch) give the same predictions."""
    inputs = torch.randn(1, 3, 96, 128) * 50
    expected = predict(lite_model, inputs, (90, 120))
    assert len(expected) > 20
    monkeypatch.setattr(tracing, 'is_tracing', lambda: True)
    with traceable_ops(lite_model) as swapped:
        layers = swapped.roi_head.mask_roi_extractor.roi_layers
        assert all(isinstance(layer, TorchvisionRoIAlign) for layer in layers)
        got = predict(swapped, inputs, (90, 120))
    assert all(isinstance(layer, mmcv.ops.RoIAlign) for layer in lite_model.roi_head.mask_roi_extractor.roi_layers)
    for key in ('bboxes', 'labels', 'scores', 'mask_scores', 'masks'):
        assert torch.equal(got.get(key), expected.get(key)), key


def test_export_refuses_what_standard_onnx_cannot_express(lite_model, tmp_path):
    with pytest.raises(ValueError, match='opset >= 16'):
        export_onnx(lite_model, str(tmp_path / 'a.onnx'), shape=(64, 64), opset=13)
    with pytest.raises(ValueError, match='multiples'):
        export_onnx(lite_model, str(tmp_path / 'a.onnx'), shape=(60, 64))
    cfg = model_cfg('toy', 'centermask_v2-39_fpn_toy.py')  # (depthwise archs keep their convs without DCN)
    cfg.backbone.update(dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, False, False, True))
    with pytest.raises(NotImplementedError, match='DCN'):
        with traceable_ops(MODELS.build(cfg)):
            pass


def test_graph_traced_without_candidates_still_detects(tmp_path):
    """Traced where no location passes score_thr (random weights, focal-loss prior bias), the graph still holds the
    decoding, NMS and mask branch: it returns empty outputs of the right shapes, and with the classification bias
    set to 0 in the ONNX file (same graph, another initializer) PyTorch's detections for that bias."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from centermask_mm.deployment import CenterMaskONNXWrapper
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(*LITE))
    model.init_weights()
    model.eval()
    image = torch.randn(1, 3, 64, 64) * 50
    proto = export_onnx(model, str(tmp_path / 'm.onnx'), shape=(64, 64), dynamic=True)  # no candidate when traced
    bias = next(i for i in proto.graph.initializer if i.name.endswith('bbox_head.conv_cls.bias'))
    results = []
    for _ in range(2):
        session = ort.InferenceSession(proto.SerializeToString())
        got = session.run(None, {'image': image.numpy(), 'img_shape': np.array([64, 64])})
        with torch.no_grad():
            expected = CenterMaskONNXWrapper(model)(image, torch.tensor([64, 64]))
        assert [o.shape for o in got] == [tuple(e.shape) for e in expected]
        np.testing.assert_array_equal(got[1], expected[1].numpy())
        np.testing.assert_allclose(got[0], expected[0].numpy(), rtol=0, atol=1e-3)
        np.testing.assert_allclose(got[4], expected[4].numpy(), rtol=0, atol=1e-4)
        results.append(len(got[0]))
        torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)
        bias.CopyFrom(numpy_helper.from_array(np.zeros(numpy_helper.to_array(bias).shape, np.float32), bias.name))
    assert results[0] == 0 and results[1] > 0
    assert onnx.checker.check_model(proto) is None
