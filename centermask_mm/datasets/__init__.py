from .coco import CenterMaskCocoDataset
from .toy_shapes import TOY_CLASSES, ToyShapesDataset, generate_toy_shapes

__all__ = ['CenterMaskCocoDataset', 'TOY_CLASSES', 'ToyShapesDataset', 'generate_toy_shapes']
