"""Patch: mmengine's local file backend writes atomically (checkpoints, ``last_checkpoint``, everything mmengine
writes to a local path through its file backend).

Why: mmengine 0.10.7's ``LocalBackend.put`` opens the target with ``'wb'`` and writes in place, so a crash or a
SIGKILL during ``save_checkpoint`` leaves a truncated ``iter_N.pth`` (and ``torch.save`` of a large model takes
seconds). :class:`AtomicLocalBackend` writes through :func:`centermask_mm.utils.atomic_io.atomic_write_bytes`: the
target is either the complete old file, the complete new file, or absent, never partial. A kill mid-write leaves a
hidden ``.<name>.<random>.tmp`` file next to the target, which nothing reads.

What it patches: :func:`enable_atomic_local_writes` (called when ``centermask_mm`` is imported) registers
:class:`AtomicLocalBackend` in mmengine's file-backend registry for local paths in place of ``LocalBackend``;
reading is unchanged (it is a subclass).

How to turn it off: call :func:`disable_atomic_local_writes` after ``import centermask_mm``.
"""
import os
from typing import Union

from mmengine.fileio import LocalBackend
from mmengine.fileio.backends import register_backend

from ..utils.atomic_io import atomic_write_bytes


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put``/``put_text`` write atomically (see :func:`atomic_write_bytes`).

    Subclassed rather than wrapped because only the two write methods differ; ``get``, ``exists``, ``remove`` ...
    are mmengine's.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


def _use_local_backend(backend_cls) -> None:
    """Register ``backend_cls`` for local paths (the ``''`` prefix and ``backend='local'``) and drop the cached
    instances of the other local backend, so that the next ``get_file_backend`` call builds ``backend_cls``."""
    from mmengine.fileio import io as mmengine_io
    register_backend('local', backend_cls, force=True, prefixes='')
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) in (LocalBackend, AtomicLocalBackend) and type(backend) is not backend_cls:
            del mmengine_io.backend_instances[key]


def enable_atomic_local_writes() -> None:
    """Make mmengine use :class:`AtomicLocalBackend` for local paths (idempotent)."""
    _use_local_backend(AtomicLocalBackend)


def disable_atomic_local_writes() -> None:
    """Undo :func:`enable_atomic_local_writes`: mmengine's ``LocalBackend`` (writes in place) for local paths."""
    _use_local_backend(LocalBackend)
