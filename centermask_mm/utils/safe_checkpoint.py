"""``torch.load`` with ``weights_only=True`` and an error that names the refused file.

A checkpoint is unpickled, and unpickling an arbitrary ``.pth`` can run code. :func:`safe_torch_load` always passes
``weights_only=True`` explicitly (so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn the check off) and turns
torch's refusal into :class:`UnsafeCheckpointError`. The types it admits beyond tensors and builtin containers are
torch's allow-list: :mod:`centermask_mm.compat.checkpoint_loading` adds those of mmengine's own checkpoints to it
when ``centermask_mm`` is imported, and makes mmengine's local checkpoint loader call this function.
"""
import pickle
import re

import torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object that is not allowed to be unpickled (e.g. a callable)."""


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
