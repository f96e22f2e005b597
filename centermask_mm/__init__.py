"""centermask_mm: CenterMask and VoVNetV2 as mmdetection 3.x components.

Importing the package registers its classes in mmdet's registries (``mmdet.registry.MODELS``...; the CPU-capable
runner in mmengine's ``RUNNERS``), so a config only needs
``custom_imports = dict(imports=['centermask_mm'], allow_failed_imports=False)``.

It first checks that one supported OpenMMLab stack is installed (the official mmengine/mmcv/mmdet or the maintained
fork onedl-*; :mod:`centermask_mm.compat.stack`), then applies the process-wide patches of
:mod:`centermask_mm.compat` (configs and tools rely on them): mmengine loads checkpoints with ``weights_only=True``
and its own checkpoint types allow-listed (it cannot load them on torch >= 2.6 otherwise), writes local files
atomically, and on the fork resolves ``mmseg::`` configs. ``centermask_mm.compat.disable_*`` undoes each.
"""
from . import compat
from .version import __version__

compat.enable_safe_checkpoint_loading()
compat.enable_atomic_local_writes()
compat.enable_fork_config_scopes()

from . import datasets, engine, models  # noqa: E402,F401  (registration side effects)
from . import evaluation  # noqa: E402,F401  (registers CocoBoundaryMetric in mmdet's METRICS)

__all__ = ['__version__']
