from . import tracing
from .config_checks import check_centermask_components, propagate_num_classes
from .image_shapes import FeaturesWithImageShapes

__all__ = ['FeaturesWithImageShapes', 'check_centermask_components', 'propagate_num_classes', 'tracing']
