"""Scale-adaptive RoI assignment (CenterMask Eq. 2; ref §5, centermask2 ``assign_boxes_to_levels_by_ratio``)."""
import math
import sys
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor

from ...utils.image_shapes import FeaturesWithImageShapes


def scale_adaptive_levels(rois: Tensor, img_areas: Tensor, k_min: int, k_max: int,
                          top_level: Optional[int] = None) -> Tensor:
    """Pyramid level index (0 = P``k_min``) of each RoI by Eq. 2: ``k = ceil(k_max - log2(A_img / A_roi))``.

    Args:
        rois: ``[N, 5]`` as ``(batch_idx, x1, y1, x2, y2)``; ``A_roi = (x2 - x1) * (y2 - y1)``.
        img_areas: ``[N]`` area of the resized, *unpadded* input image of each RoI.
        k_min, k_max: the lowest pooled level and the k_max of Eq. 2 (P3 and P5 in CenterMask).
        top_level: the highest pooled level, ``k`` is clamped to ``[k_min, top_level]``; default ``k_max`` (the
            references). A larger ``k_max`` than ``top_level`` is the paper text's reading (k_max = P7).

    With ``k_max = 5``: ``A_roi > A_img/2`` -> P5, ``A_img/4 < A_roi <= A_img/2`` -> P4, else P3 (clamped).

    Computed in float32 as centermask2 does (box areas, image areas, their ratio plus the float64 machine epsilon,
    ``log2``, ``ceil``), whatever the dtype of ``rois``, so that a box at a level boundary (an area within a float32
    rounding of ``A_img / 2``) goes to the reference's level.
    """
    top_level = k_max if top_level is None else top_level
    rois = rois.float()
    roi_areas = (rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])
    k = torch.ceil(k_max - torch.log2(img_areas.float() / roi_areas + sys.float_info.epsilon))
    return (k.clamp(k_min, top_level) - k_min).long()


def image_areas(img_shapes: Sequence, rois: Tensor) -> Tensor:
    """``[B]`` areas ``h * w`` (dtype and device of ``rois``) of the ``img_shapes`` (``(h, w, ...)`` per image).

    A shape may be a tuple of ints (mmdet's ``img_shape``) or an integer tensor ``[2]`` (the exported ONNX graph's
    ``img_shape`` input, so that the area is computed in the graph instead of frozen at the traced size); both give
    the same values (``h * w`` is exact, then rounded once to the RoI dtype).
    """
    if not any(isinstance(s, Tensor) for s in img_shapes):
        return rois.new_tensor([float(h) * float(w) for h, w in (s[:2] for s in img_shapes)])
    areas = []
    for shape in img_shapes:
        h, w = (v.to(device=rois.device, dtype=torch.float64) if isinstance(v, Tensor) else
                torch.tensor(float(v), dtype=torch.float64, device=rois.device) for v in shape[:2])
        areas.append(h * w)
    return torch.stack(areas).to(rois.dtype)


@MODELS.register_module()
class ScaleAdaptiveRoIExtractor(SingleRoIExtractor):
    """RoIAlign on P3..P5 with the level chosen by :func:`scale_adaptive_levels` instead of mmdet's canonical-scale
    rule (``SingleRoIExtractor.map_roi_levels``, k = floor(4 + log2(sqrt(wh)/224)) as in Mask R-CNN).

    Eq. 2 needs the input image area, which mmdet's extractor interface does not carry: ``forward`` takes
    ``img_shapes`` (``img_meta['img_shape']`` of each image of the batch, i.e. resized and unpadded; tuples or
    integer tensors ``[2]``, see :func:`image_areas`) as an argument, or reads them from ``feats`` when these are a
    :class:`FeaturesWithImageShapes` (what ``CenterMaskRoIHead`` and mmdet's RoI heads built as ``ImageShapesRoIHead``
    pass: Mask R-CNN, Cascade Mask R-CNN, MS R-CNN...).
    k_min and the highest pooled level come from ``featmap_strides`` (8..32 -> 3..5); ``k_max`` of Eq. 2 defaults to
    that highest level (both references) and can be set higher (``k_max=7``: the paper text's P7; the ablation
    configs): the levels are still clamped to the pooled ones. Output: ``[N, out_channels, *roi_layer.output_size]``.

    In training each level pools only its RoIs (the backward pass of RoIAlign is costly); at inference every level
    pools every RoI and the right one is selected, which gives the same features without a host synchronisation
    per level (RoIAlign treats each RoI independently).
    """

    def __init__(self, roi_layer: dict, out_channels: int, featmap_strides: Sequence[int],
                 k_max: Optional[int] = None, init_cfg=None):
        super().__init__(roi_layer, out_channels, featmap_strides, init_cfg=init_cfg)
        self.k_min = int(math.log2(featmap_strides[0]))
        self.top_level = int(math.log2(featmap_strides[-1]))
        if [2**k for k in range(self.k_min, self.top_level + 1)] != list(featmap_strides):
            raise ValueError(f'ScaleAdaptiveRoIExtractor needs consecutive power-of-two featmap_strides, '
                             f'got {featmap_strides}')
        self.k_max = self.top_level if k_max is None else k_max
        if not isinstance(self.k_max, int) or self.k_max < self.top_level:
            raise ValueError(f'ScaleAdaptiveRoIExtractor: invalid k_max={k_max!r}; valid choices are None (the '
                             f'highest pooled level, {self.top_level}) or an int >= {self.top_level}')

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        raise NotImplementedError('ScaleAdaptiveRoIExtractor maps RoIs by Eq. 2, which needs the image sizes: use '
                                  'scale_adaptive_levels(rois, img_areas, k_min, k_max)')

    def forward(self, feats: Tuple[Tensor], rois: Tensor, roi_scale_factor: Optional[float] = None,
                img_shapes: Optional[Sequence[Tuple[int, int]]] = None) -> Tensor:
        if img_shapes is None and isinstance(feats, FeaturesWithImageShapes):
            img_shapes = feats.img_shapes
        if img_shapes is None:
            raise ValueError('ScaleAdaptiveRoIExtractor.forward needs the image sizes (unpadded (h, w) per image) '
                             'for Eq. 2: as its img_shapes argument or with the features '
                             "(FeaturesWithImageShapes); in an mmdet two-stage detector build its RoI head as "
                             "roi_head=dict(type='ImageShapesRoIHead', base='StandardRoIHead' (or 'CascadeRoIHead', "
                             "'MaskScoringRoIHead', ...), ...)")
        areas = image_areas(img_shapes, rois)
        levels = scale_adaptive_levels(rois, areas[rois[:, 0].long()], self.k_min, self.k_max, self.top_level)
        rois = rois.type_as(feats[0])  # after the levels: a half-precision model pools at half-precision RoIs
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        feats = feats[:len(self.roi_layers)]
        if self.training:
            out = feats[0].new_zeros(rois.size(0), self.out_channels, *self.roi_layers[0].output_size)
            for i, (layer, feat) in enumerate(zip(self.roi_layers, feats)):
                inds = (levels == i).nonzero(as_tuple=True)[0]
                if inds.numel() > 0:
                    out[inds] = layer(feat, rois[inds])
                else:  # keep every level in the graph: DDP expects the same graph on every rank
                    out = out + feat.sum() * 0.
            return out
        out = None
        for i, (layer, feat) in enumerate(zip(self.roi_layers, feats)):
            pooled = layer(feat, rois)
            out = pooled if out is None else torch.where((levels == i)[:, None, None, None], pooled, out)
        return out
