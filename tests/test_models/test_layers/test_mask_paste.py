"""The batched paste gives exactly mmdet's per-box CPU paste (``_do_paste_mask`` with ``skip_empty``)."""
import pytest
import torch
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

import centermask_mm.models.layers.mask_paste as mask_paste
from centermask_mm.models.layers import paste_masks_in_image

H, W = 97, 131


def mmdet_paste(masks, boxes, height=H, width=W, threshold=0.5):
    out = torch.zeros(len(boxes), height, width, dtype=torch.bool)
    for k, box in enumerate(boxes):
        if box[2] <= 0 or box[0] >= width or box[3] <= 0 or box[1] >= height:
            continue  # mmdet raises on such a box; ours gives an empty mask
        pasted, region = _do_paste_mask(masks[k:k + 1, None], box[None], height, width, skip_empty=True)
        out[k][region] = pasted[0] >= threshold
    return out


def test_threshold_is_inclusive_and_passed_on():
    """ref §4.5: pixels whose pasted probability is >= the threshold (0.5 unless given) are in the mask. A 32x32
    mask in a 32x32 box at integer corners is sampled exactly at its cell centres (powers of two: no rounding), so
    the pasted mask is the thresholded mask itself there, and nothing outside."""
    levels = torch.tensor([0.25, 0.5, 0.75])
    masks = levels[torch.randint(0, 3, (1, 32, 32), generator=torch.Generator().manual_seed(2))]
    box = torch.tensor([[10., 20., 42., 52.]])
    for threshold in (None, 0.25, 0.75):
        kwargs = {} if threshold is None else dict(threshold=threshold)
        expected = torch.zeros(H, W, dtype=torch.bool)
        expected[20:52, 10:42] = masks[0] >= (0.5 if threshold is None else threshold)
        assert torch.equal(paste_masks_in_image(masks, box, H, W, **kwargs)[0], expected), threshold


@pytest.mark.parametrize('chunk', [2**24, 700])  # one chunk, and many chunks of padded regions
def test_identical_to_mmdet_paste_on_random_boxes(monkeypatch, chunk):
    monkeypatch.setattr(mask_paste, 'CHUNK_ELEMENTS', chunk)
    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        n = int(torch.randint(1, 12, (), generator=gen))
        masks = torch.rand(n, 28, 28, generator=gen)
        corner = torch.rand(n, 2, generator=gen) * torch.tensor([W + 40., H + 40.]) - 20
        size = torch.rand(n, 2, generator=gen) * torch.tensor([W * 0.8, H * 0.8])
        if trial % 5 == 0:
            size[0, 0] = 0  # a zero-width box
        boxes = torch.cat([corner, corner + size], dim=1)
        assert torch.equal(paste_masks_in_image(masks, boxes, H, W), mmdet_paste(masks, boxes)), trial


def test_no_boxes():
    assert paste_masks_in_image(torch.zeros(0, 28, 28), torch.zeros(0, 4), H, W).shape == (0, H, W)


@pytest.mark.parametrize('chunk', [2**24, 700])
def test_images_of_a_batch_pasted_at_once_equal_mmdet_paste_image_by_image(monkeypatch, chunk):
    """Boxes of several images of different sizes (one without boxes) in one call: each image's masks are mmdet's
    paste of its own boxes into its own size."""
    monkeypatch.setattr(mask_paste, 'CHUNK_ELEMENTS', chunk)
    gen = torch.Generator().manual_seed(1)
    sizes, counts = [(97, 131), (60, 45), (80, 80), (33, 150)], [5, 0, 7, 3]
    masks, boxes, expected = [], [], []
    for (h, w), n in zip(sizes, counts):
        m = torch.rand(n, 28, 28, generator=gen)
        corner = torch.rand(n, 2, generator=gen) * torch.tensor([w + 20., h + 20.]) - 10
        b = torch.cat([corner, corner + torch.rand(n, 2, generator=gen) * torch.tensor([w * 0.8, h * 0.8])], 1)
        expected.append(mmdet_paste(m, b, h, w))
        masks.append(m)
        boxes.append(b)
    image_index = torch.cat([torch.full((n, ), i) for i, n in enumerate(counts)])
    pasted = mask_paste.paste_masks_in_images(torch.cat(masks), torch.cat(boxes), sizes, image_index)
    assert [tuple(p.shape) for p in pasted] == [(n, h, w) for (h, w), n in zip(sizes, counts)]
    for i, (got, want) in enumerate(zip(pasted, expected)):
        assert torch.equal(got, want), i
    with pytest.raises(ValueError, match='image_index'):
        mask_paste.paste_masks_in_images(torch.cat(masks), torch.cat(boxes), sizes)
