from .boundary_metric import BOUNDARY_ITEMS, VALID_METRICS, CocoBoundaryMetric, evaluate_boundary

__all__ = ['BOUNDARY_ITEMS', 'VALID_METRICS', 'CocoBoundaryMetric', 'evaluate_boundary']
