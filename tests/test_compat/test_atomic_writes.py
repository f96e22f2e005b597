"""The atomic-writes patch: mmengine's local file backend writes checkpoints atomically, and the patch can be
undone."""
import os

import pytest
import torch
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from centermask_mm.compat import AtomicLocalBackend, disable_atomic_local_writes, enable_atomic_local_writes
from centermask_mm.utils import safe_torch_load
from tests.test_utils.test_atomic_io import Crash, arm_half_write_crash


def checkpoint(value):
    return dict(meta=dict(iter=int(value)), state_dict=dict(w=torch.full((1000,), float(value))))


def test_local_paths_use_the_atomic_backend(tmp_path):
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is AtomicLocalBackend


def test_crash_while_overwriting_keeps_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / 'latest.pth'
    save_checkpoint(checkpoint(1), str(path))
    arm_half_write_crash(monkeypatch)
    with pytest.raises(Crash):
        save_checkpoint(checkpoint(2), str(path))
    loaded = safe_torch_load(str(path))
    assert loaded['meta']['iter'] == 1 and torch.equal(loaded['state_dict']['w'], torch.full((1000,), 1.0))
    assert sorted(os.listdir(tmp_path)) == ['latest.pth']  # the partial temp file was removed


def test_disable_puts_mmengine_back_and_enable_repatches(tmp_path):
    try:
        disable_atomic_local_writes()
        assert type(get_file_backend(str(tmp_path / 'x.pth'))) is LocalBackend
    finally:
        enable_atomic_local_writes()
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is AtomicLocalBackend
    assert type(get_file_backend(backend_args=dict(backend='local'))) is AtomicLocalBackend
