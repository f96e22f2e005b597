from .maskiou_head import CenterMaskIoUHead
from .sag_mask_head import SAGMaskHead, SpatialAttention

__all__ = ['CenterMaskIoUHead', 'SAGMaskHead', 'SpatialAttention']
