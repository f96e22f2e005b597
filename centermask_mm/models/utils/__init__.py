from . import tracing
from .config_checks import check_centermask_components, propagate_num_classes

__all__ = ['check_centermask_components', 'propagate_num_classes', 'tracing']
