from .centermask_roi_head import CenterMaskRoIHead
from .mask_heads import SAGMaskHead, SpatialAttention
from .roi_extractors import ScaleAdaptiveRoIExtractor, scale_adaptive_levels

__all__ = ['CenterMaskRoIHead', 'SAGMaskHead', 'SpatialAttention', 'ScaleAdaptiveRoIExtractor',
           'scale_adaptive_levels']
