from .coco import CenterMaskCocoDataset
from .toy_shapes import TOY_CLASSES, ToyShapesDataset, generate_toy_shapes
from .transforms import BrokenImageError, SafeLoadImageFromFile

__all__ = ['BrokenImageError', 'CenterMaskCocoDataset', 'SafeLoadImageFromFile', 'TOY_CLASSES', 'ToyShapesDataset',
           'generate_toy_shapes']
