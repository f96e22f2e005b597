"""Atomic local file writes for checkpoints (and everything else mmengine writes through its local backend).

mmengine 0.10.7's ``LocalBackend.put`` opens the target with ``'wb'`` and writes in place, so a crash or a SIGKILL
during ``save_checkpoint`` leaves a truncated ``iter_N.pth`` (and ``torch.save`` of a large model takes seconds).
:class:`AtomicLocalBackend` writes to a temporary file in the same directory, flushes and fsyncs it, then
``os.replace``-s it onto the target (atomic on POSIX and Windows within one file system) and fsyncs the directory:
the target is either the complete old file, the complete new file, or absent, never partial.
:func:`enable_atomic_local_writes` (called when ``centermask_mm`` is imported, next to the safe loader) registers it
for local paths in place of ``LocalBackend``; reading is unchanged (it is a subclass). A kill mid-write leaves a
hidden ``.<name>.<random>.tmp`` file next to the target, which nothing reads.
"""
import contextlib
import os
import os.path as osp
import tempfile
from typing import Union

from mmengine.fileio import LocalBackend
from mmengine.fileio.backends import register_backend


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(data: bytes, filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` atomically: temp file in the same directory, flush + fsync, ``os.replace``.

    The new file gets the permissions a plain ``open(filepath, 'wb')`` would give it (0666 minus the umask).
    """
    filepath = os.fspath(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put``/``put_text`` write atomically (see :func:`atomic_write_bytes`).

    Subclassed rather than wrapped because only the two write methods differ; ``get``, ``exists``, ``remove`` ...
    are mmengine's.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


def enable_atomic_local_writes() -> None:
    """Make mmengine use :class:`AtomicLocalBackend` for local paths (the ``''`` prefix and ``backend='local'``).

    Instances of the plain ``LocalBackend`` that mmengine already cached are dropped so that the next
    ``get_file_backend`` call builds the atomic one. Idempotent.
    """
    from mmengine.fileio import io as mmengine_io
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mmengine_io.backend_instances[key]
