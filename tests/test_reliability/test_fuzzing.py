"""Property-based tests (hypothesis) over input sizes, padding and box sets: VoVNet's feature-map geometry, the
Eq. 2 RoI level rule, and CenterMask's predict on whatever boxes the FCOS head hands to the mask branch."""
import math
import sys

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from centermask_mm.models.roi_heads.roi_extractors.scale_adaptive_roi_extractor import scale_adaptive_levels
from tests.helpers import model_cfg

# deadline=None: CPU timings vary; derandomize + no database: the same examples on every run, nothing written;
# no shrinking phase: shrinking a failure of the model tests takes minutes on 2 cores (the failing example is
# reported unshrunk)
FUZZ = settings(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
STRIDES = (4, 8, 16, 32)
_cache = {}


def toy_model():
    """CenterMask-Lite V-19-slim-dw (the toy config, 3 classes), built once, in eval mode."""
    if 'model' not in _cache:
        torch.manual_seed(0)
        model = MODELS.build(model_cfg('toy', 'centermask-lite_v2-19-slim-dw_fpn_toy.py'))
        model.init_weights()
        _cache['model'] = model.eval()
    return _cache['model']


def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def ceil_mode_pool_out(size, kernel=3, stride=2):
    """nn.MaxPool2d(kernel, stride, ceil_mode=True) output size (PyTorch docs: ceil instead of floor, and the last
    window must start inside the input)."""
    out = math.ceil((size - kernel) / stride) + 1
    return out - 1 if (out - 1) * stride >= size else out


def vovnet_geometry(size):
    """centermask2's VoVNet: stem 3x3 convs with strides 2, 1, 2 (padding 1), stage 2 without pooling, stages 3-5
    after MaxPool2d(3, 2, ceil_mode=True)."""
    size = conv_out(conv_out(conv_out(size, 3, 2, 1), 3, 1, 1), 3, 2, 1)
    sizes = [size]
    for _ in range(3):
        size = ceil_mode_pool_out(size)
        sizes.append(size)
    return sizes


@settings(FUZZ, max_examples=20)
@given(h=st.integers(32, 96), w=st.integers(32, 96))
def test_vovnet_feature_maps_follow_the_reference_geometry(h, w):
    """Any unpadded size: the stem's convolutions round up, the ceil-mode pooling of stages 3-5 as PyTorch defines
    it (for odd sizes this is floor(x / 2), so unpadded inputs are *not* ceil(H / stride) in general)."""
    if 'backbone' not in _cache:
        _cache['backbone'] = MODELS.build(dict(type='VoVNet', arch='V-19-slim-dw-eSE', out_indices=(0, 1, 2, 3)))
    with torch.no_grad():
        outs = _cache['backbone'].eval()(torch.rand(1, 3, h, w))
    assert [tuple(o.shape[-2:]) for o in outs] == list(zip(vovnet_geometry(h), vovnet_geometry(w)))
    assert [o.shape[1] for o in outs] == [112, 256, 384, 512]


@settings(FUZZ, max_examples=15)
@given(sizes=st.lists(st.tuples(st.integers(20, 150), st.integers(20, 150)), min_size=1, max_size=3))
def test_padded_batches_give_ceil_div_feature_maps(sizes):
    """Images of any sizes batched by the model's DetDataPreprocessor (pad_size_divisor=32): every level is the
    padded batch size ceil-divided by its stride, and covers every image (ceil(H / stride) for each image)."""
    model = toy_model()
    data = dict(inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in sizes],
                data_samples=[DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w))) for h, w in sizes])
    batch = model.data_preprocessor(data, False)['inputs']
    pad_h = -(-max(h for h, _ in sizes) // 32) * 32
    pad_w = -(-max(w for _, w in sizes) // 32) * 32
    assert batch.shape == (len(sizes), 3, pad_h, pad_w)
    with torch.no_grad():
        outs = model.backbone(batch)
    assert model.backbone.out_strides == STRIDES[1:]  # the toy config's backbone: stages 3-5
    for stride, out in zip(model.backbone.out_strides, outs):
        assert out.shape[-2:] == (-(-pad_h // stride), -(-pad_w // stride))
        for h, w in sizes:
            assert out.shape[-2] * stride >= h and out.shape[-1] * stride >= w


def eq2_level(img_area, roi_area, k_min=3, k_max=5):
    """Eq. 2 in plain Python: k = ceil(k_max - log2(A_img / A_roi)), clamped to [k_min, k_max] (centermask2 adds
    float epsilon to the ratio); returned as an index from k_min. A zero-area RoI goes to k_min."""
    if roi_area == 0:
        return 0
    k = math.ceil(k_max - math.log2(img_area / roi_area + sys.float_info.epsilon))
    return min(max(k, k_min), k_max) - k_min


box_sets = st.lists(st.tuples(st.integers(0, 1333), st.integers(0, 1333), st.integers(0, 1333),
                              st.integers(0, 1333)), min_size=1, max_size=40)


@settings(FUZZ, max_examples=200)
@given(img=st.tuples(st.integers(16, 1333), st.integers(16, 1333)), boxes=box_sets,
       levels=st.sampled_from([(8, 16, 32), (4, 8, 16, 32), (8, 16, 32, 64, 128)]))
def test_eq2_levels_in_range_monotone_and_as_the_formula(img, boxes, levels):
    k_min, k_max = int(math.log2(levels[0])), int(math.log2(levels[-1]))
    rois = torch.tensor([[0, min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)] for x1, y1, x2, y2 in boxes],
                        dtype=torch.float32)
    img_area = float(img[0] * img[1])
    got = scale_adaptive_levels(rois, torch.full((len(rois), ), img_area), k_min, k_max)
    assert got.dtype == torch.long and got.shape == (len(rois), )
    assert got.min() >= 0 and got.max() <= k_max - k_min
    areas = ((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])).tolist()
    assert got.tolist() == [eq2_level(img_area, a, k_min, k_max) for a in areas]
    order = sorted(range(len(areas)), key=lambda i: areas[i])  # a larger RoI never goes to a finer level
    assert all(got[a] <= got[b] for a, b in zip(order, order[1:]))


coordinate = st.one_of(st.floats(-3000, 3000, allow_nan=False), st.sampled_from([0.0, -1e6, 1e6, 1e9, 64.0]))


@st.composite
def fcos_outputs(draw):
    """What an FCOS head could hand to the mask branch: any boxes (degenerate, inverted, huge, negative, outside
    the image; NaN-free), scores in [0, 1], labels of the 3 classes."""
    n = draw(st.integers(0, 12))
    boxes = [[draw(coordinate) for _ in range(4)] for _ in range(n)]
    boxes += [list(b) for b in draw(st.lists(st.sampled_from([(10, 10, 10, 10), (5, 5, 5, 40), (60, 60, 5, 5),
                                                                (-50, -50, -1, -1), (0, 0, 64, 64)]), max_size=3))]
    m = len(boxes)
    scores = draw(st.lists(st.floats(0, 1), min_size=m, max_size=m))
    labels = draw(st.lists(st.integers(0, 2), min_size=m, max_size=m))
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                        scores=torch.tensor(scores, dtype=torch.float32), labels=torch.tensor(labels, dtype=torch.long))


@settings(FUZZ, max_examples=30)
@given(dets=st.lists(fcos_outputs(), min_size=1, max_size=2), ori=st.tuples(st.integers(40, 200),
                                                                            st.integers(40, 200)))
def test_predict_never_crashes_whatever_boxes_fcos_gives(dets, ori):
    """predict with the FCOS head's output replaced: well-formed results, exactly the boxes that overlap the output
    image (detectron2's nonempty rule, after rescaling), masks at ori_shape."""
    model = toy_model()
    img_h, img_w = 64, 48
    scale = (img_w / ori[1], img_h / ori[0])
    samples = [DetDataSample(metainfo=dict(img_shape=(img_h, img_w), ori_shape=ori, scale_factor=scale,
                                           pad_shape=(64, 64), batch_input_shape=(64, 64))) for _ in dets]
    original = model.bbox_head.predict_by_feat
    model.bbox_head.predict_by_feat = lambda *args, **kwargs: [d.clone() for d in dets]
    try:
        with torch.no_grad():
            results = model.predict(torch.rand(len(dets), 3, 64, 64), samples, rescale=True)
    finally:
        model.bbox_head.predict_by_feat = original
    assert len(results) == len(dets)
    clip = model.roi_head.test_cfg.get('postprocess', 'mmdet') == 'detectron2'  # final boxes clipped or not
    for sample, det in zip(results, dets):
        pred = sample.pred_instances
        if clip:  # detectron2's rescale: multiplied by output / input size (in float32)
            boxes = det.bboxes * det.bboxes.new_tensor([ori[1] / img_w, ori[0] / img_h]).repeat(2)
        else:  # mmdet's: divided by the scale factor
            boxes = det.bboxes / det.bboxes.new_tensor(scale).repeat(2)
        clipped = torch.stack([boxes[:, 0].clamp(0, ori[1]), boxes[:, 1].clamp(0, ori[0]),
                               boxes[:, 2].clamp(0, ori[1]), boxes[:, 3].clamp(0, ori[0])], dim=1)
        keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        n = int(keep.sum())
        assert len(pred) == n
        assert pred.bboxes.shape == (n, 4) and torch.allclose(pred.bboxes, (clipped if clip else boxes)[keep])
        assert torch.equal(pred.labels, det.labels[keep]) and torch.equal(pred.scores, det.scores[keep])
        assert pred.masks.shape == (n, *ori) and pred.masks.dtype == torch.bool
        assert pred.mask_scores.shape == (n, ) and torch.isfinite(pred.mask_scores).all()
