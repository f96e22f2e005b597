"""The only place where centermask_mm changes mmengine's behaviour for the whole process, and where the two
OpenMMLab stacks it supports (official, and the maintained fork onedl-*) are told apart.

* :mod:`.stack`: which stack is installed. Importing this package checks it first, before anything imports
  mmengine/mmcv/mmdet: a missing, unsupported or mixed stack raises :class:`StackError` naming the supported versions
  of both stacks.
* :mod:`.checkpoint_loading`: mmengine's local checkpoint loader reads with ``weights_only=True`` and torch
  allow-lists the types of mmengine's own checkpoints (on torch >= 2.6 mmengine cannot load its own checkpoints,
  mmengine issue #1655, and turning torch's check off would let a crafted ``.pth`` run code on load); on the fork,
  its other loaders lose their fallback to ``weights_only=False`` too. Off: :func:`disable_safe_checkpoint_loading`.
* :mod:`.atomic_writes`: mmengine's local file backend writes atomically (in place, a kill during a save leaves a
  truncated checkpoint). Off: :func:`disable_atomic_local_writes`.
* :mod:`.config_scopes`: on the fork, ``mmseg::`` base configs resolve to onedl-mmsegmentation. Off:
  :func:`disable_fork_config_scopes`.
* :mod:`.resume`: whether the train loop replays the data of the skipped iterations on resume (official) or skips
  them without loading (fork), which decides what ``ReliableCheckpointHook`` restores.
"""
from .stack import SUPPORTED_STACKS, StackError, check_stack, installed_stack

installed_stack()  # before mmengine/mmcv/mmdet are imported: a clear error instead of an ImportError deep inside

from .atomic_writes import AtomicLocalBackend, disable_atomic_local_writes, enable_atomic_local_writes  # noqa: E402
from .checkpoint_loading import (MMENGINE_CHECKPOINT_GLOBALS, disable_safe_checkpoint_loading,  # noqa: E402
                                 enable_safe_checkpoint_loading)
from .config_scopes import disable_fork_config_scopes, enable_fork_config_scopes  # noqa: E402
from .resume import train_loop_replays_skipped_data  # noqa: E402

__all__ = ['AtomicLocalBackend', 'MMENGINE_CHECKPOINT_GLOBALS', 'SUPPORTED_STACKS', 'StackError', 'check_stack',
           'disable_atomic_local_writes', 'disable_fork_config_scopes', 'disable_safe_checkpoint_loading',
           'enable_atomic_local_writes', 'enable_fork_config_scopes', 'enable_safe_checkpoint_loading',
           'installed_stack', 'train_loop_replays_skipped_data']
