from .toy_shapes import TOY_CLASSES, ToyShapesDataset, generate_toy_shapes

__all__ = ['TOY_CLASSES', 'ToyShapesDataset', 'generate_toy_shapes']
