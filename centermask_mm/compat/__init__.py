"""The only place where centermask_mm changes mmengine's behaviour for the whole process: two gaps of mmengine 0.10.x,
each patched by an ``enable_*`` function that ``import centermask_mm`` calls, and undone by its ``disable_*``.

* :mod:`.checkpoint_loading`: mmengine's local checkpoint loader reads with ``weights_only=True`` and torch
  allow-lists the types of mmengine's own checkpoints (on torch >= 2.6 mmengine cannot load its own checkpoints,
  mmengine issue #1655, and turning torch's check off would let a crafted ``.pth`` run code on load). Off:
  :func:`disable_safe_checkpoint_loading`.
* :mod:`.atomic_writes`: mmengine's local file backend writes atomically (in place, a kill during a save leaves a
  truncated checkpoint). Off: :func:`disable_atomic_local_writes`.
"""
from .atomic_writes import AtomicLocalBackend, disable_atomic_local_writes, enable_atomic_local_writes
from .checkpoint_loading import (MMENGINE_CHECKPOINT_GLOBALS, disable_safe_checkpoint_loading,
                                 enable_safe_checkpoint_loading)

__all__ = ['AtomicLocalBackend', 'MMENGINE_CHECKPOINT_GLOBALS', 'disable_atomic_local_writes',
           'disable_safe_checkpoint_loading', 'enable_atomic_local_writes', 'enable_safe_checkpoint_loading']
