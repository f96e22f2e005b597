"""Safe checkpoint loading for mmengine 0.10.x on torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True`` by default, and mmengine 0.10.7's own checkpoints then fail to load
(``Unsupported global ... HistoryBuffer``): resume, ``load_from`` and ``tools/test.py`` break. Turning the check off
(``weights_only=False`` or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) would let a crafted ``.pth`` run code on load.
Instead, :func:`enable_safe_checkpoint_loading` (called when ``centermask_mm`` is imported)

* allow-lists exactly the non-tensor types that a checkpoint written by an mmengine ``Runner`` holds
  (:data:`MMENGINE_CHECKPOINT_GLOBALS`: the message hub's ``HistoryBuffer`` and the numpy arrays/scalars in it), and
* re-registers mmengine's local-file loader so that it passes ``weights_only=True`` explicitly (so the environment
  switch cannot turn it off) and turns a refusal into :class:`UnsafeCheckpointError` naming the file.
"""
import os.path as osp
import pickle
import re

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


def _numpy_globals():
    """numpy types pickled inside mmengine checkpoints (arrays and scalars in the message hub's buffers).

    ``_reconstruct``/``scalar`` are registered under both their numpy-2 (``numpy._core``) and numpy-1
    (``numpy.core``) module paths, since a checkpoint records the path of the numpy that wrote it.
    """
    from numpy._core import multiarray
    entries = [np.ndarray, np.dtype]
    for func in (multiarray._reconstruct, multiarray.scalar):
        entries += [func, (func, f'numpy.core.multiarray.{func.__name__}')]
    entries += [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'bool')]
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


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object that is not allowed to be unpickled (e.g. a callable)."""


def load_from_local(filename, map_location):
    """mmengine's local-file checkpoint loader, with ``weights_only=True`` always."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def safe_torch_load(filename, map_location=None):
    """``torch.load(filename, weights_only=True)`` with a clear error when the file holds a disallowed object."""
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # keep torch's words about what was refused, not its advice to turn the check off
        lines = [line.strip() for line in str(err).splitlines()]
        detail = ' '.join(line for line in lines if line and not line.startswith(_TORCH_ADVICE)) or str(err)
        detail = re.sub(r'Please file an issue .*? use case:\s*', '', detail)
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {filename!r}: it contains an object that is not a tensor, a builtin '
            'container or one of the allow-listed mmengine/numpy types, so it could run code when unpickled. '
            f'Nothing from it was executed. torch said: {detail}') from None


# torch's advice lines (turn the check off...), left out of our message
_TORCH_ADVICE = ('Weights only load failed', 'Check the documentation', '(1)', '(2)', 'Re-running', 'Please use')
_enabled = False


def enable_safe_checkpoint_loading():
    """Allow-list mmengine's checkpoint types and install the safe local loader (idempotent)."""
    global _enabled
    if _enabled:
        return
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    _enabled = True
