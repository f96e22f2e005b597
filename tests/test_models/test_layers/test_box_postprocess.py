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
