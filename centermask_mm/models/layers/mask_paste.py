"""Pasting box-relative masks into the image, all boxes at once (no per-box Python loop)."""
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor

#: elements of the sampling grid per chunk of boxes (each element costs ~12 bytes: grid x/y and the sample)
CHUNK_ELEMENTS = 2**24


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_h: int, img_w: int, threshold: float = 0.5) -> Tensor:
    """``masks [N, h, w]`` (probabilities) in ``boxes [N, 4]`` -> bool ``[N, img_h, img_w]`` (``>= threshold``).

    The same values as mmdet's / detectron2's ``_do_paste_mask`` (bilinear ``grid_sample``, ``align_corners=False``,
    pixel centres at ``+0.5``): each box is sampled only on its own region ``[floor(x1) - 1, ceil(x2) + 1)`` clipped
    to the image, outside which the bilinear sample is exactly 0, as mmdet's CPU path does box by box; here the
    regions are padded to the largest one and sampled in one ``grid_sample`` per chunk of boxes, then scattered
    into the output without a boolean index. One host synchronisation (the region sizes) for the whole image.
    Boxes that do not overlap the image give empty masks.
    """
    num = masks.shape[0]
    if num == 0:
        return torch.zeros(0, img_h, img_w, dtype=torch.bool, device=masks.device)
    # flat output with one spare column that takes the writes of padding positions (all False)
    out = torch.zeros(num, img_h * img_w + 1, dtype=torch.bool, device=masks.device)
    boxes = boxes.float()
    x0 = (boxes[:, 0].floor() - 1).clamp(min=0, max=img_w)
    y0 = (boxes[:, 1].floor() - 1).clamp(min=0, max=img_h)
    x1 = (boxes[:, 2].ceil() + 1).clamp(min=0, max=img_w)
    y1 = (boxes[:, 3].ceil() + 1).clamp(min=0, max=img_h)
    widths = (x1 - x0).clamp(min=0)
    heights = (y1 - y0).clamp(min=0)
    sizes: List[List[float]] = torch.stack([heights, widths], dim=1).tolist()  # the one host sync
    start = 0
    while start < num:  # chunks of boxes whose padded grids stay under CHUNK_ELEMENTS
        end, max_h, max_w = start, 1, 1
        while end < num:
            h, w = max(max_h, int(sizes[end][0])), max(max_w, int(sizes[end][1]))
            if end > start and (end - start + 1) * h * w > CHUNK_ELEMENTS:
                break
            max_h, max_w, end = h, w, end + 1
        _paste_chunk(out[start:end], masks[start:end], boxes[start:end], x0[start:end], y0[start:end],
                     widths[start:end], heights[start:end], max_h, max_w, img_w, threshold)
        start = end
    return out[:, :-1].reshape(num, img_h, img_w)


def _paste_chunk(out, masks, boxes, x0, y0, widths, heights, max_h, max_w, img_w, threshold):
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
    flat = rows.long()[:, :, None] * img_w + cols.long()[:, None, :]
    flat = torch.where(valid, flat, torch.full_like(flat, out.shape[1] - 1))  # padding -> the spare column
    out.scatter_(1, flat.view(n, -1), (sampled & valid).view(n, -1))
