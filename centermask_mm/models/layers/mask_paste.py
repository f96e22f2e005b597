"""Pasting box-relative masks into their images, all boxes of all images at once (no per-box or per-image loop)."""
from collections import Counter
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: elements of the sampling grid per chunk of boxes (each element costs ~12 bytes: grid x/y and the sample)
CHUNK_ELEMENTS = 2**24


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_h: int, img_w: int, threshold: float = 0.5) -> Tensor:
    """``masks [N, h, w]`` (probabilities) in ``boxes [N, 4]`` of one ``img_h x img_w`` image -> bool
    ``[N, img_h, img_w]`` (``>= threshold``): :func:`paste_masks_in_images` of one image."""
    return paste_masks_in_images(masks, boxes, [(img_h, img_w)], threshold=threshold)[0]


def paste_masks_in_images(masks: Tensor, boxes: Tensor, image_sizes: Sequence[Tuple[int, int]],
                          image_index: Optional[Tensor] = None, threshold: float = 0.5) -> List[Tensor]:
    """``masks [N, h, w]`` (probabilities) in ``boxes [N, 4]`` -> per image ``i`` a bool ``[n_i, H_i, W_i]``
    (``>= threshold``) of its boxes, ``image_sizes[i] = (H_i, W_i)``.

    ``image_index [N]`` (int64, non-decreasing: the boxes grouped by image, in order) says which image a box is in;
    ``None``: all in image 0. The per-image masks are consecutive views of one buffer.

    The same values as mmdet's / detectron2's ``_do_paste_mask`` (bilinear ``grid_sample``, ``align_corners=False``,
    pixel centres at ``+0.5``): each box is sampled only on its own region ``[floor(x1) - 1, ceil(x2) + 1)`` clipped
    to its image, outside which the bilinear sample is exactly 0, as mmdet's CPU path does box by box; here the
    regions are padded to the largest one and sampled in one ``grid_sample`` per chunk of boxes, then scattered
    into the output without a boolean index. One host synchronisation (the region sizes) for all images. Boxes
    that do not overlap their image give empty masks. x and y are computed together (``[N, 2, ...]`` tensors) to
    keep the operator count, i.e. the host time of a launch-bound GPU call, low.
    """
    num, device = masks.shape[0], masks.device
    if image_index is None and len(image_sizes) != 1:
        raise ValueError(f'paste_masks_in_images: image_index is needed for {len(image_sizes)} images')
    boxes = boxes.float()
    # region [N, 4] (x0, y0, x1, y1), integers: floor(x1) - 1, ceil(x2) + 1, clipped to the box's image
    region = torch.cat([boxes[:, :2].floor() - 1, boxes[:, 2:].ceil() + 1], dim=1).clamp_(min=0)
    if image_index is None:  # one image: its size as numbers
        img_h, img_w = image_sizes[0]
        region[:, 0::2].clamp_(max=img_w)
        region[:, 1::2].clamp_(max=img_h)
        row_stride = int(img_w)
    else:  # per box, its image's (w, h, w, h)
        limits = torch.tensor(image_sizes, dtype=torch.float32, device=device).flip(1).repeat(1, 2)[image_index]
        region = torch.minimum(region, limits)
        row_stride = limits[:, :1].long()  # [N, 1] the image's width
    size = (region[:, 2:] - region[:, :2]).clamp_(min=0)  # [N, 2] region width, height
    # the one host sync: region sizes (and images)
    info: List[List[float]] = (size if image_index is None else
                               torch.cat([size, image_index[:, None].to(size.dtype)], dim=1)).tolist()
    counts = Counter(int(row[2]) for row in info) if image_index is not None else {0: num}
    pixels = [int(h) * int(w) for h, w in image_sizes]
    image_start, start = [], 0  # where each image's [n_i, H_i, W_i] block starts in the flat output
    for i in range(len(image_sizes)):
        image_start.append(start)
        start += counts.get(i, 0) * pixels[i]
    # flat output with one spare element that takes the writes of padding positions (never returned)
    out = torch.zeros(start + 1, dtype=torch.bool, device=device)
    if num:
        if image_index is None:
            base = torch.arange(num, device=device) * pixels[0]
        else:
            first = [0] * len(image_sizes)  # index of each image's first box
            for i in range(1, len(image_sizes)):
                first[i] = first[i - 1] + counts.get(i - 1, 0)
            per_image = torch.tensor([[image_start[i], first[i], pixels[i]] for i in range(len(image_sizes))],
                                     dtype=torch.long, device=device)[image_index]
            base = per_image[:, 0] + (torch.arange(num, device=device) - per_image[:, 1]) * per_image[:, 2]
        begin = 0
        while begin < num:  # chunks of boxes whose padded grids stay under CHUNK_ELEMENTS
            end, max_h, max_w = begin, 1, 1
            while end < num:
                h, w = max(max_h, int(info[end][1])), max(max_w, int(info[end][0]))
                if end > begin and (end - begin + 1) * h * w > CHUNK_ELEMENTS:
                    break
                max_h, max_w, end = h, w, end + 1
            chunk = slice(begin, end)
            stride = row_stride if isinstance(row_stride, int) else row_stride[chunk]
            _paste_chunk(out, masks[chunk], boxes[chunk], region[chunk], size[chunk], stride, base[chunk], max_h,
                         max_w, threshold)
            begin = end
    return [out[image_start[i]:image_start[i] + counts.get(i, 0) * pixels[i]].view(counts.get(i, 0), *image_sizes[i])
            for i in range(len(image_sizes))]


def _paste_chunk(out, masks, boxes, region, size, row_stride, base, max_h, max_w, threshold):
    """Paste ``masks [n, h, w]`` into their regions (``region [n, 4]`` corners, ``size [n, 2]`` width and height,
    padded to ``max_h x max_w``) of the flat ``out``, where a box's pixel ``(y, x)`` is ``base + y * row_stride +
    x`` (``row_stride``: an int, or ``[n, 1]``)."""
    n, device = masks.shape[0], masks.device
    steps = torch.arange(max(max_h, max_w), device=device, dtype=torch.float32)
    pixel = region[:, :2, None] + steps  # [n, 2, L]: image x (row 0) and y (row 1) of the region's columns/rows
    # mmdet's grid: (pixel + 0.5 - x1) / (x2 - x1) * 2 - 1; zero-width boxes give inf, which mmdet sets to 0
    grid = (pixel + 0.5 - boxes[:, :2, None]) / (boxes[:, 2:] - boxes[:, :2])[:, :, None] * 2 - 1
    grid = grid.masked_fill_(grid.isinf(), 0)
    grid = torch.stack([grid[:, None, 0, :max_w].expand(n, max_h, max_w),
                        grid[:, 1, :max_h, None].expand(n, max_h, max_w)], dim=3)
    sampled = F.grid_sample(masks[:, None].float(), grid, align_corners=False)[:, 0] >= threshold
    inside = steps < size[:, :, None]  # [n, 2, L]
    valid = inside[:, None, 0, :max_w] & inside[:, 1, :max_h, None]  # [n, max_h, max_w]
    pixel = pixel.long()
    flat = (base[:, None] + pixel[:, 1, :max_h] * row_stride)[:, :, None] + pixel[:, None, 0, :max_w]
    flat = torch.where(valid, flat, out.shape[0] - 1)  # padding -> the spare element
    out.scatter_(0, flat.view(-1), sampled.view(-1))
