from .point_generator import CachedMlvlPointGenerator

__all__ = ['CachedMlvlPointGenerator']
