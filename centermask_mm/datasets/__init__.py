from .coco import CenterMaskCocoDataset
from .reference_resize import MaskRCNNBenchmarkResize, maskrcnn_benchmark_output_shape
from .toy_shapes import TOY_CLASSES, ToyShapesDataset, generate_toy_shapes
from .transforms import BrokenImageError, SafeLoadImageFromFile

__all__ = ['BrokenImageError', 'CenterMaskCocoDataset', 'SafeLoadImageFromFile', 'TOY_CLASSES', 'ToyShapesDataset',
           'generate_toy_shapes', 'MaskRCNNBenchmarkResize', 'maskrcnn_benchmark_output_shape']
