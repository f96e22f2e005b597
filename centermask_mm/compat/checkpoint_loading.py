"""Patch: mmengine's local checkpoint loader reads with ``weights_only=True``, and mmengine's own checkpoint types
are allow-listed in torch.

Why: torch >= 2.6 unpickles with ``weights_only=True`` by default, and mmengine 0.10.7's own checkpoints then fail to
load (``Unsupported global ... HistoryBuffer``, mmengine issue #1655): resume, ``load_from`` and ``tools/test.py``
break. Turning the check off (``weights_only=False`` or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) would let a crafted
``.pth`` run code on load. Instead, :func:`enable_safe_checkpoint_loading` (called when ``centermask_mm`` is
imported)

* allow-lists, process-wide (``torch.serialization.add_safe_globals``), exactly the non-tensor types that a checkpoint
  written by an mmengine ``Runner`` holds (:data:`MMENGINE_CHECKPOINT_GLOBALS`: the message hub's ``HistoryBuffer``
  and the numpy arrays/scalars in it), and
* re-registers mmengine's local-file loader (``CheckpointLoader``'s ``''`` prefix) as :func:`load_from_local`, which
  calls :func:`centermask_mm.utils.safe_checkpoint.safe_torch_load`: ``weights_only=True`` explicitly (so the
  environment switch cannot turn it off), and a refusal raises ``UnsafeCheckpointError`` naming the file.

* on the maintained fork (onedl-mmengine, :mod:`.stack`), also replaces ``mmengine.runner.checkpoint.
  _safe_torch_load``, which the fork's local, ``pavi://``, ``s3://``/``petrel://`` and ``open-mmlab://`` loaders call
  and which retries a refused file with ``weights_only=False``, by :func:`fork_safe_torch_load` (no retry). The
  official mmengine's loaders call ``torch.load`` with torch's default (``weights_only=True`` on torch >= 2.6).

How to turn it off: call :func:`disable_safe_checkpoint_loading` after ``import centermask_mm``: mmengine's own
loaders and torch's allow-list without these types are back.
"""
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from ..utils.safe_checkpoint import safe_torch_load
from .stack import installed_stack

# the fork's loader helper that falls back to weights_only=False (None on the official stack, which has none)
_FORK_TORCH_LOAD = mmengine_checkpoint._safe_torch_load if installed_stack() == 'onedl' else None


def _numpy_globals():
    """numpy types pickled inside mmengine checkpoints (arrays and scalars in the message hub's buffers).

    ``_reconstruct``/``scalar`` are registered under both their numpy-2 (``numpy._core``) and numpy-1
    (``numpy.core``) module paths, since a checkpoint records the path of the numpy that wrote it.
    """
    from numpy._core import multiarray
    entries = [np.ndarray, np.dtype]
    for func in (multiarray._reconstruct, multiarray.scalar):
        entries += [func, (func, f'numpy.core.multiarray.{func.__name__}')]
    # uint32: numpy's global random state (the MT19937 key) that ReliableCheckpointHook stores
    entries += [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'uint32', 'bool')]
    return entries


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner, name):
    """Stands in for ``builtins.getattr`` while unpickling, for exactly ``getattr(HistoryBuffer, <statistic>)``.

    ``HistoryBuffer.__getstate__`` pickles its statistics functions; with torch.save's pickle protocol 2 each is
    written as ``getattr(HistoryBuffer, 'mean')``. A general ``getattr`` would hand a crafted file any attribute
    of any allowed type (``numpy.ndarray.tofile``...), so everything else is refused.
    """
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not allowed in a checkpoint')


def _history_buffer_globals():
    """``HistoryBuffer`` and the statistics functions its ``__getstate__`` pickles (as ``getattr`` calls with
    protocol 2, as qualified names with protocol >= 4); methods added by ``register_statistics`` are refused."""
    module = HistoryBuffer.__module__
    methods = [(getattr(HistoryBuffer, name), f'{module}.HistoryBuffer.{name}')
               for name in _HISTORY_BUFFER_STATISTICS]
    return [HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr')] + methods


#: Everything beyond tensors and builtin containers that mmengine Runner checkpoints contain.
MMENGINE_CHECKPOINT_GLOBALS = _history_buffer_globals() + _numpy_globals()


def load_from_local(filename, map_location):
    """mmengine's local-file checkpoint loader, with ``weights_only=True`` always."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def fork_safe_torch_load(file, map_location=None, weights_only=None):
    """onedl-mmengine's ``_safe_torch_load(file, map_location, weights_only)`` with ``weights_only=True`` always
    (the fork's callers never pass ``weights_only``; a refusal raises ``UnsafeCheckpointError``)."""
    return safe_torch_load(file, map_location=map_location)


def enable_safe_checkpoint_loading() -> None:
    """Allow-list mmengine's checkpoint types and install the safe loaders (idempotent)."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    if _FORK_TORCH_LOAD is not None:
        mmengine_checkpoint._safe_torch_load = fork_safe_torch_load


def disable_safe_checkpoint_loading() -> None:
    """Undo :func:`enable_safe_checkpoint_loading`: mmengine's own local loader (``torch.load`` with torch's default
    ``weights_only``) and torch's allow-list without :data:`MMENGINE_CHECKPOINT_GLOBALS`."""
    CheckpointLoader.register_scheme(prefixes='', loader=mmengine_checkpoint.load_from_local, force=True)
    if _FORK_TORCH_LOAD is not None:
        mmengine_checkpoint._safe_torch_load = _FORK_TORCH_LOAD
    others = [entry for entry in torch.serialization.get_safe_globals() if entry not in MMENGINE_CHECKPOINT_GLOBALS]
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(others)
