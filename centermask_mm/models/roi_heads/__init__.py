from .centermask_roi_head import CenterMaskRoIHead
from .image_shapes_roi_head import ImageShapesMixin, ImageShapesRoIHead
from .mask_heads import SAGMaskHead, SpatialAttention
from .point_rend_centermask_roi_head import PointRendCenterMaskRoIHead
from .roi_extractors import ScaleAdaptiveRoIExtractor, scale_adaptive_levels

__all__ = ['CenterMaskRoIHead', 'ImageShapesMixin', 'ImageShapesRoIHead', 'PointRendCenterMaskRoIHead', 'SAGMaskHead',
           'SpatialAttention', 'ScaleAdaptiveRoIExtractor', 'scale_adaptive_levels']
