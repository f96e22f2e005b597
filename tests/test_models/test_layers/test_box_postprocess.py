"""``final_boxes``: boxes to the output image, clipped (detectron2) or not (mmdet), empty ones dropped (ref §4.5)."""
import pytest
import torch

from centermask_mm.models.layers import final_boxes

# (x1, y1, x2, y2) in an output image of h=50, w=80
BOXES = torch.tensor([
    [10., 5., 30., 25.],     # inside
    [-10., -5., 20., 60.],   # overlaps, clipped to [0, 0, 20, 50]
    [85., 10., 95., 20.],    # right of the image: empty after clipping
    [10., 52., 20., 70.],    # below the image
    [30., 30., 30., 40.],    # zero width
    [70., 45., 120., 49.],   # clipped to [70, 45, 80, 49]
])
KEEP = [0, 1, 5]
CLIPPED = [[10., 5., 30., 25.], [0., 0., 20., 50.], [70., 45., 80., 49.]]


@pytest.mark.parametrize('per_box', [False, True])
def test_clip_and_drop_empty(per_box):
    h, w = (torch.full((6, ), 50.), torch.full((6, ), 80.)) if per_box else (50, 80)
    keep, boxes = final_boxes(BOXES, h, w, clip=True)
    assert keep.tolist() == KEEP and boxes.tolist() == CLIPPED
    keep, boxes = final_boxes(BOXES, h, w, clip=False)  # mmdet: the same boxes kept, unclipped
    assert keep.tolist() == KEEP and torch.equal(boxes, BOXES[KEEP])


def test_scale_factor_per_batch_and_per_box():
    """Boxes in a 2x-resized input come back to the output image before clipping."""
    keep, boxes = final_boxes(BOXES * 2, 50, 80, scale_factor=(2.0, 2.0))
    assert keep.tolist() == KEEP and boxes.tolist() == CLIPPED
    scale = torch.tensor([[2.0, 4.0]]).repeat(6, 1)  # per box (w_scale, h_scale)
    keep, boxes = final_boxes(BOXES * torch.tensor([2.0, 4.0, 2.0, 4.0]), torch.full((6, ), 50.),
                              torch.full((6, ), 80.), scale_factor=scale)
    assert keep.tolist() == KEEP and boxes.tolist() == CLIPPED


def test_per_box_image_sizes_differ():
    """Each box is clipped to its own image: the same box kept in a wide image, dropped in a narrow one."""
    box = torch.tensor([[50., 10., 70., 20.]]).repeat(2, 1)
    keep, boxes = final_boxes(box, torch.tensor([40., 40.]), torch.tensor([100., 45.]))
    assert keep.tolist() == [0] and boxes.tolist() == [[50., 10., 70., 20.]]


def detectron2_postprocess_boxes(boxes, img_shape, ori_shape):
    """detectron2 v0.3 ``detector_postprocess`` on the boxes, written out: ``Boxes.scale`` multiplies the float32
    boxes in place by the Python floats ``output / input`` size, ``Boxes.clip`` clamps to the output image,
    ``nonempty`` keeps boxes of positive width and height."""
    (in_h, in_w), (out_h, out_w) = img_shape, ori_shape
    scale_x, scale_y = out_w / in_w, out_h / in_h
    boxes = boxes.clone()
    boxes[:, 0::2] *= scale_x
    boxes[:, 1::2] *= scale_y
    boxes[:, 0].clamp_(min=0, max=out_w)
    boxes[:, 1].clamp_(min=0, max=out_h)
    boxes[:, 2].clamp_(min=0, max=out_w)
    boxes[:, 3].clamp_(min=0, max=out_h)
    keep = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    return keep.nonzero().squeeze(1), boxes[keep]


@pytest.mark.parametrize('img_shape, ori_shape', [((400, 602), (333, 501)), ((384, 512), (480, 640)),
                                                  ((562, 1000), (360, 640)), ((800, 1199), (1067, 1600))])
def test_detectron2_rescale_is_bitwise_detectron2s(img_shape, ori_shape):
    from centermask_mm.models.layers import detectron2_box_scale
    gen = torch.Generator().manual_seed(0)
    h, w = img_shape
    xy = torch.rand(4000, 2, generator=gen) * torch.tensor([w * 1.2, h * 1.2]) - torch.tensor([w * 0.1, h * 0.1])
    boxes = torch.cat([xy, xy + torch.rand(4000, 2, generator=gen) * 300], 1)
    meta = dict(img_shape=img_shape, ori_shape=ori_shape, scale_factor=(w / ori_shape[1], h / ori_shape[0]))
    expected_keep, expected = detectron2_postprocess_boxes(boxes, img_shape, ori_shape)
    keep, got = final_boxes(boxes, *ori_shape, box_scale=detectron2_box_scale(meta), clip=True)
    assert torch.equal(keep, expected_keep) and torch.equal(got, expected)
    # per box (a batch of images): the same numbers
    n = len(boxes)
    keep, got = final_boxes(boxes, torch.full((n, ), float(ori_shape[0])), torch.full((n, ), float(ori_shape[1])),
                            box_scale=torch.tensor([detectron2_box_scale(meta)]).repeat(n, 1), clip=True)
    assert torch.equal(keep, expected_keep) and torch.equal(got, expected)
    # mmdet's arithmetic (divide by the scale factor) is not bitwise the same: what this test guards
    if img_shape != ori_shape:
        _, divided = final_boxes(boxes, *ori_shape, scale_factor=meta['scale_factor'], clip=True)
        assert divided.shape != expected.shape or not torch.equal(divided, expected)


def test_scale_factor_and_box_scale_are_exclusive():
    with pytest.raises(ValueError, match='not both'):
        final_boxes(BOXES, 50, 80, scale_factor=(2.0, 2.0), box_scale=(0.5, 0.5))
