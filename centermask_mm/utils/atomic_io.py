"""Atomic file writes: a file is either its complete old content, its complete new content, or absent, never partial.

:func:`atomic_write_bytes` writes to a temporary file in the same directory, flushes and fsyncs it, then
``os.replace``-s it onto the target (atomic on POSIX and Windows within one file system) and fsyncs the directory.
A kill mid-write leaves a hidden ``.<name>.<random>.tmp`` file next to the target, which nothing reads
(:func:`leftover_temp_files` finds them; :class:`~centermask_mm.engine.ReliableCheckpointHook` removes those of its
checkpoints before training). mmengine's local file backend writes through it once ``centermask_mm`` is imported
(:mod:`centermask_mm.compat.atomic_writes`).
"""
import contextlib
import glob
import os
import os.path as osp
import tempfile
from typing import Union


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
_TEMP_SUFFIX = '.tmp'


def leftover_temp_files(directory: Union[str, os.PathLike], name_pattern: str) -> list:
    """The temp files that writes of :func:`atomic_write_bytes` to ``directory/<name>`` left behind when they were
    killed, for the names matching the glob ``name_pattern`` (``'iter_*.pth'``); sorted paths."""
    pattern = osp.join(glob.escape(os.fspath(directory)), f'.{name_pattern}.*{_TEMP_SUFFIX}')
    return sorted(glob.glob(pattern))


def atomic_write_bytes(data: bytes, filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` atomically: temp file in the same directory, flush + fsync, ``os.replace``.

    The new file gets the permissions a plain ``open(filepath, 'wb')`` would give it (0666 minus the umask).
    """
    filepath = os.fspath(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix=_TEMP_SUFFIX, dir=directory)
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

