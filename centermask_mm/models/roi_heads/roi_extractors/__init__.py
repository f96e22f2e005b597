from .scale_adaptive_roi_extractor import ScaleAdaptiveRoIExtractor, scale_adaptive_levels

__all__ = ['ScaleAdaptiveRoIExtractor', 'scale_adaptive_levels']
