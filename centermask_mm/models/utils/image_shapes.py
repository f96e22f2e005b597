"""Neck outputs that carry the sizes of the images they were computed from (what Eq. 2 needs; ref §5)."""
from typing import Sequence, Tuple

from torch import Tensor


class FeaturesWithImageShapes(tuple):
    """The multi-level features of a batch, the tuple of ``[B, C, H_l, W_l]`` maps that mmdet's detectors pass to
    their RoI heads, together with ``img_shapes``: the resized, unpadded ``(h, w)`` of each of the ``B`` images
    (``img_meta['img_shape']``), as detectron2's ``ImageList`` keeps its image sizes next to the padded tensor.

    mmdet's RoI heads hand their RoI extractors ``x[:extractor.num_inputs]``: a slice keeps ``img_shapes``, so a
    RoI extractor that needs them (:class:`ScaleAdaptiveRoIExtractor`, Eq. 2) reads them from its ``feats``
    argument, while extractors that do not (mmdet's ``SingleRoIExtractor``) see the usual tuple of maps. An integer
    index gives the map itself.
    """

    img_shapes: Tuple[Tuple[int, int], ...]

    def __new__(cls, feats: Sequence[Tensor], img_shapes: Sequence) -> 'FeaturesWithImageShapes':
        features = super().__new__(cls, feats)
        features.img_shapes = tuple(img_shapes)
        return features

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return FeaturesWithImageShapes(item, self.img_shapes) if isinstance(index, slice) else item

    def __reduce__(self):  # copy / pickle keep the image shapes
        return FeaturesWithImageShapes, (tuple(self), self.img_shapes)
