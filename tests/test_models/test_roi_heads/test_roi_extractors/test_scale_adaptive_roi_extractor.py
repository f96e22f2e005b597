import math
import sys

import pytest
import torch
from mmdet.registry import MODELS

from centermask_mm.models.roi_heads import scale_adaptive_levels

H, W = 800, 1216  # A_img = 972,800; A_img / 2 = 486,400 = 400 x 1216; A_img / 4 = 243,200 = 200 x 1216


def levels(boxes, img_area=H * W):
    rois = torch.tensor([[0.0, *b] for b in boxes])
    return scale_adaptive_levels(rois, torch.full((len(boxes), ), float(img_area)), k_min=3, k_max=5).tolist()


def test_eq2_boundaries_by_hand():
    # k = ceil(5 - log2(A_img / A_roi)), clamped to [3, 5]; index 0 = P3
    assert levels([(0, 0, 1216, 400)]) == [1]   # A_roi = A_img/2 exactly: ceil(5 - 1) = 4 -> P4
    assert levels([(0, 0, 1216, 401)]) == [2]   # just above half: ceil(4.0something) = 5 -> P5
    assert levels([(0, 0, 1216, 200)]) == [0]   # A_roi = A_img/4 exactly: ceil(5 - 2) = 3 -> P3
    assert levels([(0, 0, 1216, 201)]) == [1]   # just above a quarter -> P4
    assert levels([(0, 0, 1216, 800)]) == [2]   # the whole image: k = 5 -> P5
    assert levels([(600, 0, 1216, 800)]) == [2]  # A_roi = 616 * 800 = 492,800 > A_img/2 -> P5
    assert levels([(0, 600, 1216, 800)]) == [0]  # A_roi = 1216 * 200 = A_img/4 exactly -> P3
    assert levels([(10, 10, 20, 20)]) == [0]    # k = ceil(5 - 13.25) = -8, clamped to P3
    assert levels([(-500, -500, 2000, 2000)]) == [2]  # unclipped box larger than the image: k = 8, clamped to P5


def reference_levels_float32(boxes, img_areas):
    """centermask2's Eq. 2 as it computes it: float32 box areas ``(x2 - x1) * (y2 - y1)`` and image areas, then
    ``ceil(5 - log2(A_img / A_roi + eps))`` in float32, clamped to [3, 5], minus 3."""
    boxes = boxes.float()
    box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    k = torch.ceil(5 - torch.log2(img_areas.float() / box_areas + sys.float_info.epsilon))
    return (torch.clamp(k, min=3, max=5).to(torch.int64) - 3).tolist()


def test_eq2_at_exact_level_boundaries_follows_the_float32_reference():
    """Boxes whose area is within a few float32 roundings of A_img/2 or A_img/4: the level is the reference's
    float32 one; in float64 some of them go one level up."""
    ulp = lambda v: torch.nextafter(torch.tensor(v), torch.tensor(float('inf'))).item() - v  # noqa: E731
    heights = [400 + k * ulp(400.0) for k in range(-4, 5)] + [200 + k * ulp(200.0) for k in range(-4, 5)]
    boxes = torch.tensor([[0.0, 0.0, 1216.0, h] for h in heights], dtype=torch.float32)
    # and boxes not anchored at 0 (the subtraction rounds too)
    boxes = torch.cat([boxes, boxes + torch.tensor([[0.3, 0.7, 0.3, 0.7]])])
    img_areas = torch.full((len(boxes), ), float(H * W))
    expected = reference_levels_float32(boxes, img_areas)
    rois = torch.cat([torch.zeros(len(boxes), 1), boxes], 1)
    assert scale_adaptive_levels(rois, img_areas, 3, 5).tolist() == expected
    assert scale_adaptive_levels(rois.double(), img_areas.double(), 3, 5).tolist() == expected  # any input dtype
    areas64 = (boxes[:, 2].double() - boxes[:, 0].double()) * (boxes[:, 3].double() - boxes[:, 1].double())
    exact = (torch.ceil(5 - torch.log2(img_areas.double() / areas64)).clamp(3, 5) - 3).long().tolist()
    assert exact != expected  # the constructed boxes do sit where float64 and float32 disagree


def test_image_area_is_per_roi():
    rois = torch.tensor([[0, 0, 0, 100, 100], [1, 0, 0, 100, 100]], dtype=torch.float32)
    # the same 100x100 box is > half of a 100x150 image (P5) but <= a quarter of a 400x400 one (P3)
    assert scale_adaptive_levels(rois, torch.tensor([100 * 150., 400 * 400.]), 3, 5).tolist() == [2, 0]


def build_extractor():
    return MODELS.build(dict(type='ScaleAdaptiveRoIExtractor', out_channels=4, featmap_strides=[8, 16, 32],
                             roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0, aligned=True)))


def test_rois_are_pooled_from_their_level():
    extractor = build_extractor()
    assert (extractor.k_min, extractor.k_max) == (3, 5)
    img_h, img_w = 256, 256
    feats = tuple(torch.full((2, 4, img_h // s, img_w // s), float(i + 1)) for i, s in enumerate([8, 16, 32]))
    rois = torch.tensor([[0, 10, 10, 40, 40],      # small -> P3 (value 1)
                         [0, 0, 0, 256, 100],      # 25,600 > 65,536/4 and <= /2 -> P4 (value 2)
                         [1, 0, 0, 250, 250]],     # > half of the image -> P5 (value 3)
                        dtype=torch.float32)
    out = extractor(feats, rois, img_shapes=[(img_h, img_w), (img_h, img_w)])
    assert out.shape == (3, 4, 14, 14)
    assert torch.allclose(out.mean((1, 2, 3)), torch.tensor([1.0, 2.0, 3.0]))


def test_image_shapes_are_required():
    extractor = build_extractor()
    feats = tuple(torch.rand(1, 4, 8, 8) for _ in range(3))
    with pytest.raises(ValueError, match='img_shapes'):
        extractor(feats, torch.tensor([[0, 0, 0, 10, 10.]]))


def test_non_consecutive_strides_are_refused():
    with pytest.raises(ValueError, match='consecutive power-of-two'):
        MODELS.build(dict(type='ScaleAdaptiveRoIExtractor', out_channels=4, featmap_strides=[8, 32],
                          roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)))


def test_inference_pooling_equals_per_level_pooling():
    """Inference pools every RoI on every level and selects (no host sync per level); training pools each level's
    RoIs only. Both give the same features."""
    from mmdet.registry import MODELS
    extractor = MODELS.build(dict(type='ScaleAdaptiveRoIExtractor', out_channels=8, featmap_strides=[8, 16, 32],
                                  roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0, aligned=True)))
    feats = tuple(torch.rand(2, 8, 256 // s, 320 // s) for s in (8, 16, 32))
    boxes = torch.tensor([[0, 10., 10., 30., 40.], [0, 0., 0., 250., 200.], [1, 50., 60., 200., 150.],
                          [1, 5., 5., 300., 250.], [0, 100., 100., 101., 190.], [0, 0., 0., 200., 150.]])
    shapes = [(256, 320), (250, 300)]
    areas = torch.tensor([256. * 320, 250. * 300])[boxes[:, 0].long()]
    assert set(scale_adaptive_levels(boxes, areas, 3, 5).tolist()) == {0, 1, 2}  # all three levels used
    extractor.train()
    per_level = extractor(feats, boxes, img_shapes=shapes)
    extractor.eval()
    assert torch.equal(extractor(feats, boxes, img_shapes=shapes), per_level)


# Eq. 2 in a batch of images of different sizes (§5): A_input is the area of the image each RoI belongs to.
BATCH_SHAPES = [(64, 64), (128, 192), (256, 256)]  # (h, w): areas 4,096, 24,576 and 65,536; padded to 256 x 256
BATCH_ROIS = [  # (image, x1, y1, x2, y2); A_roi; k = ceil(5 - log2(A_img / A_roi)) clamped to [3, 5]
    (0, 0., 0., 40., 40.),     # 1,600 in 4,096:   ceil(5 - 1.36) = 4 -> P4
    (1, 0., 0., 40., 40.),     # 1,600 in 24,576:  ceil(5 - 3.94) = 2 -> P3 (clamped)
    (0, 2., 2., 62., 62.),     # 3,600 in 4,096:   ceil(5 - 0.19) = 5 -> P5
    (1, 10., 10., 70., 70.),   # 3,600 in 24,576:  ceil(5 - 2.77) = 3 -> P3
    (1, 50., 20., 150., 120.),  # 10,000 in 24,576: ceil(5 - 1.30) = 4 -> P4
    (2, 50., 20., 150., 120.),  # 10,000 in 65,536: ceil(5 - 2.71) = 3 -> P3
    (2, 0., 0., 200., 200.),   # 40,000 in 65,536: ceil(5 - 0.71) = 5 -> P5
    (1, 0., 0., 190., 120.),   # 22,800 in 24,576: ceil(5 - 0.11) = 5 -> P5
]
BATCH_LEVELS = [1, 0, 2, 0, 1, 0, 2, 2]  # index 0 = P3, by hand from the comments above


def level_coded_feats(channels=4, size=256, batch=3):
    """P3..P5 of a ``size`` x ``size`` padded batch whose every value says its level and image:
    ``10 * (image + 1) + level index + 1``."""
    return tuple(torch.full((batch, channels, size // s, size // s), 0.).add_(
        torch.arange(batch, dtype=torch.float32)[:, None, None, None] * 10 + 10 + i + 1)
        for i, s in enumerate([8, 16, 32]))


@pytest.mark.parametrize('training', [True, False])
def test_each_roi_is_levelled_with_its_own_images_area(training):
    """§5: every RoI of a batch of differently sized images is pooled from the level that its own image's area
    gives; with the first image's area the RoIs of images 1 and 2 would go to other levels."""
    # the expected levels follow the rule written out here too, with each RoI's own image area
    for (img, x1, y1, x2, y2), level in zip(BATCH_ROIS, BATCH_LEVELS):
        h, w = BATCH_SHAPES[img]
        k = math.ceil(5 - math.log2(h * w / ((x2 - x1) * (y2 - y1))))
        assert min(max(k, 3), 5) - 3 == level
    extractor = build_extractor()
    extractor.train(training)
    rois = torch.tensor(BATCH_ROIS)
    out = extractor(level_coded_feats(), rois, img_shapes=BATCH_SHAPES)
    expected = torch.tensor([10. * (img + 1) + level + 1 for (img, *_), level in zip(BATCH_ROIS, BATCH_LEVELS)])
    assert torch.allclose(out.mean((1, 2, 3)), expected)
    assert torch.allclose(out.amin((1, 2, 3)), expected) and torch.allclose(out.amax((1, 2, 3)), expected)
