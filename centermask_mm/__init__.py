"""centermask_mm: CenterMask and VoVNetV2 as mmdetection 3.x components.

Importing the package registers its classes directly in mmdet's registries (``mmdet.registry.MODELS``...), so a
config only needs ``custom_imports = dict(imports=['centermask_mm'], allow_failed_imports=False)``, and makes
mmengine load checkpoints safely on torch >= 2.6 (see :mod:`centermask_mm.utils.safe_checkpoint`) and write local
files atomically (see :mod:`centermask_mm.utils.atomic_io`).
"""
from .utils.atomic_io import enable_atomic_local_writes
from .utils.safe_checkpoint import enable_safe_checkpoint_loading
from .version import __version__

enable_safe_checkpoint_loading()
enable_atomic_local_writes()

from . import datasets, engine, models  # noqa: E402,F401  (registration side effects)

__all__ = ['__version__']
