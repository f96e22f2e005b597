import os
import stat

import pytest

import centermask_mm.utils.atomic_io as atomic_io
from centermask_mm.utils import atomic_write_bytes


class Crash(Exception):
    """Stands in for the process dying mid-write."""


def arm_half_write_crash(monkeypatch):
    """From now on, every file the atomic writer opens takes half of the bytes given to it, then the 'process
    dies' (:class:`Crash`)."""
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            raise Crash('killed mid-write')

    monkeypatch.setattr(atomic_io.os, 'fdopen', lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))


def test_writes_the_bytes_with_the_permissions_of_a_plain_open(tmp_path):
    path = tmp_path / 'new' / 'dir' / 'file.bin'  # missing directories are created
    atomic_write_bytes(b'abc', path)
    assert path.read_bytes() == b'abc'
    plain = tmp_path / 'plain.bin'
    with open(plain, 'wb') as f:
        f.write(b'abc')
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
    atomic_write_bytes(b'xy', str(path))
    assert path.read_bytes() == b'xy' and os.listdir(path.parent) == ['file.bin']


@pytest.mark.parametrize('dies_in', ['write', 'replace'])
def test_a_crash_keeps_the_old_file_whole_and_removes_the_temp_file(tmp_path, monkeypatch, dies_in):
    path = tmp_path / 'latest.pth'
    atomic_write_bytes(b'old' * 1000, path)

    def dying_replace(src, dst):
        raise Crash('killed before the rename')

    if dies_in == 'write':
        arm_half_write_crash(monkeypatch)
    else:
        monkeypatch.setattr(atomic_io.os, 'replace', dying_replace)
    with pytest.raises(Crash):
        atomic_write_bytes(b'new' * 1000, path)
    assert path.read_bytes() == b'old' * 1000
    assert os.listdir(tmp_path) == ['latest.pth']
