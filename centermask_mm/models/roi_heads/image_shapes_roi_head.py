"""Eq. 2 in mmdet's two-stage detectors: any mmdet RoI head, built so that its RoI extractors see the image sizes.

mmdet's RoI heads (Mask R-CNN's ``StandardRoIHead``, ``CascadeRoIHead``, MS R-CNN's ``MaskScoringRoIHead``,
PointRend's, HTC's...) call their RoI extractors with the features and the RoIs only, while Eq. 2 (ref §5) needs the
area of each RoI's image. ``roi_head=dict(type='ImageShapesRoIHead', base='CascadeRoIHead', ...)`` builds the
``base`` head with :class:`ImageShapesMixin`, which hands the head its features as
:class:`~centermask_mm.models.utils.image_shapes.FeaturesWithImageShapes`: the head's own code runs unchanged and
passes them on to its extractors, and a ``ScaleAdaptiveRoIExtractor`` among them reads the image sizes there. One
mechanism for every RoI head, no per-detector subclass; the parameters and state-dict keys are the base head's.
"""
from typing import Dict, Tuple, Type

from mmdet.models.roi_heads import BaseRoIHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from torch import Tensor

from ..utils.image_shapes import FeaturesWithImageShapes


def features_with_image_shapes(x: Tuple[Tensor], batch_data_samples: SampleList) -> FeaturesWithImageShapes:
    """``x`` with the ``img_shape`` (resized, unpadded ``(h, w)``) of each data sample attached."""
    return FeaturesWithImageShapes(x, [sample.metainfo['img_shape'][:2] for sample in batch_data_samples])


class ImageShapesMixin:
    """Put before an mmdet RoI head class: ``loss``, ``predict`` and ``forward`` (the entry points mmdet's
    detectors call, same signatures in every ``BaseRoIHead``) attach the image shapes of ``batch_data_samples`` to
    the features ``x`` and run the base head's method on them."""

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList) -> dict:
        return super().loss(features_with_image_shapes(x, batch_data_samples), rpn_results_list, batch_data_samples)

    def predict(self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList,
                rescale: bool = False) -> InstanceList:
        return super().predict(features_with_image_shapes(x, batch_data_samples), rpn_results_list,
                               batch_data_samples, rescale=rescale)

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList, batch_data_samples: SampleList = None):
        if batch_data_samples is not None:
            x = features_with_image_shapes(x, batch_data_samples)
        return super().forward(x, rpn_results_list, batch_data_samples)


_WITH_IMAGE_SHAPES: Dict[type, type] = {}


def with_image_shapes(base: Type[BaseRoIHead]) -> type:
    """The class ``(ImageShapesMixin, base)``, created once per ``base`` (so that every build of it is the same
    class), named ``<base>WithImageShapes``."""
    if base not in _WITH_IMAGE_SHAPES:
        _WITH_IMAGE_SHAPES[base] = type(f'{base.__name__}WithImageShapes', (ImageShapesMixin, base),
                                        {'__module__': __name__, '__doc__': f'{base.__name__} with '
                                         'ImageShapesMixin: its RoI extractors see the image sizes.'})
    return _WITH_IMAGE_SHAPES[base]


@MODELS.register_module()
def ImageShapesRoIHead(base: str, **kwargs) -> BaseRoIHead:  # noqa: N802 (a registry type name)
    """Build the registered mmdet RoI head ``base`` (e.g. ``'StandardRoIHead'``, ``'CascadeRoIHead'``,
    ``'MaskScoringRoIHead'``) with ``kwargs`` so that its RoI extractors receive the image sizes
    (:func:`with_image_shapes`). ``base`` must name a ``BaseRoIHead``; anything else fails with the reason."""
    base_cls = MODELS.get(base) if isinstance(base, str) else base
    if not (isinstance(base_cls, type) and issubclass(base_cls, BaseRoIHead)):
        raise ValueError(f"ImageShapesRoIHead: base={base!r} is not a registered mmdet RoI head (a BaseRoIHead such "
                         "as 'StandardRoIHead', 'CascadeRoIHead' or 'MaskScoringRoIHead')")
    if issubclass(base_cls, ImageShapesMixin):
        raise ValueError(f'ImageShapesRoIHead: base={base!r} already passes the image shapes')
    return with_image_shapes(base_cls)(**kwargs)
