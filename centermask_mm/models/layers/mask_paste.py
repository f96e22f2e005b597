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
    that do not overlap their image give empty masks.
    """
    num, device = masks.shape[0], masks.device
    if image_index is None and len(image_sizes) != 1:
        raise ValueError(f'paste_masks_in_images: image_index is needed for {len(image_sizes)} images')
    if image_index is None:  # one image: its size as numbers
        img_h, img_w = image_sizes[0]
    else:  # per box, its image's size
        img_h, img_w = torch.tensor(image_sizes, dtype=torch.float32, device=device).view(-1, 2)[image_index].unbind(1)
    boxes = boxes.float()
    x0 = _clamp((boxes[:, 0].floor() - 1), img_w)
    y0 = _clamp((boxes[:, 1].floor() - 1), img_h)
    x1 = _clamp((boxes[:, 2].ceil() + 1), img_w)
    y1 = _clamp((boxes[:, 3].ceil() + 1), img_h)
    widths = (x1 - x0).clamp(min=0)
    heights = (y1 - y0).clamp(min=0)
    # the one host sync: region sizes (and images)
    columns = [heights, widths] + ([] if image_index is None else [image_index.to(heights.dtype)])
    info: List[List[float]] = torch.stack(columns, dim=1).tolist()
    counts = Counter(int(row[2]) for row in info) if image_index is not None else {0: num}
    pixels = [int(h) * int(w) for h, w in image_sizes]
    image_start, start = [], 0  # where each image's [n_i, H_i, W_i] block starts in the flat output
    for i in range(len(image_sizes)):
        image_start.append(start)
        start += counts.get(i, 0) * pixels[i]
    # flat output with one spare element that takes the writes of padding positions (all False)
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
                h, w = max(max_h, int(info[end][0])), max(max_w, int(info[end][1]))
                if end > begin and (end - begin + 1) * h * w > CHUNK_ELEMENTS:
                    break
                max_h, max_w, end = h, w, end + 1
            chunk = slice(begin, end)
            _paste_chunk(out, masks[chunk], boxes[chunk], x0[chunk], y0[chunk], widths[chunk], heights[chunk],
                         img_w[chunk] if isinstance(img_w, Tensor) else img_w, base[chunk], max_h, max_w, threshold)
            begin = end
    return [out[image_start[i]:image_start[i] + counts.get(i, 0) * pixels[i]].view(counts.get(i, 0), *image_sizes[i])
            for i in range(len(image_sizes))]


def _clamp(x: Tensor, upper) -> Tensor:
    """``x`` clamped to ``[0, upper]``, ``upper`` a number or a tensor of ``x``'s shape."""
    return x.clamp(0, upper) if not isinstance(upper, Tensor) else torch.minimum(x.clamp(min=0), upper)


def _paste_chunk(out, masks, boxes, x0, y0, widths, heights, img_w, base, max_h, max_w, threshold):
    n = masks.shape[0]
    device = masks.device
    cols = x0[:, None] + torch.arange(max_w, device=device, dtype=torch.float32)[None]  # [n, max_w] image x
    rows = y0[:, None] + torch.arange(max_h, device=device, dtype=torch.float32)[None]  # [n, max_h] image y
    bx0, by0, bx1, by1 = boxes.unbind(1)
    grid_x = (cols + 0.5 - bx0[:, None]) / (bx1 - bx0)[:, None] * 2 - 1
    grid_y = (rows + 0.5 - by0[:, None]) / (by1 - by0)[:, None] * 2 - 1
    # zero-width boxes give inf; mmdet's paste sets those to 0 (the mask centre)
    grid_x = torch.where(torch.isinf(grid_x), torch.zeros_like(grid_x), grid_x)
    grid_y = torch.where(torch.isinf(grid_y), torch.zeros_like(grid_y), grid_y)
    grid = torch.stack([grid_x[:, None, :].expand(n, max_h, max_w), grid_y[:, :, None].expand(n, max_h, max_w)],
                       dim=3)
    sampled = F.grid_sample(masks[:, None].float(), grid, align_corners=False)[:, 0] >= threshold
    valid = ((torch.arange(max_h, device=device)[None, :, None] < heights[:, None, None]) &
             (torch.arange(max_w, device=device)[None, None, :] < widths[:, None, None]))
    row_stride = img_w.long()[:, None, None] if isinstance(img_w, Tensor) else int(img_w)  # the image's width
    flat = base[:, None, None] + rows.long()[:, :, None] * row_stride + cols.long()[:, None, :]
    flat = torch.where(valid, flat, torch.full_like(flat, out.shape[0] - 1))  # padding -> the spare element
    out.scatter_(0, flat.view(-1), (sampled & valid).view(-1))
