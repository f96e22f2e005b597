from .sag_mask_head import SAGMaskHead, SpatialAttention

__all__ = ['SAGMaskHead', 'SpatialAttention']
