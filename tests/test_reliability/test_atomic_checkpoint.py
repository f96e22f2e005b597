"""A crash in the middle of writing a checkpoint leaves the previous checkpoint and ``last_checkpoint`` loadable."""
import collections
import os
import types

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import save_checkpoint

import centermask_mm.utils.atomic_io as atomic_io
from centermask_mm.engine import ReliableCheckpointHook
from centermask_mm.utils import safe_torch_load


class Crash(Exception):
    """Stands in for the process dying mid-write."""


def checkpoint(value):
    return dict(meta=dict(iter=int(value)), state_dict=dict(w=torch.full((1000,), float(value))))


def fake_runner(work_dir):
    """What CheckpointHook._save_checkpoint_with_step uses of a Runner; saves through mmengine's save_checkpoint."""
    runner = types.SimpleNamespace(work_dir=str(work_dir), message_hub=MessageHub.get_instance(f'ckpt-{work_dir}'))
    runner.save_checkpoint = lambda out_dir, filename, *args, **kwargs: save_checkpoint(
        checkpoint(filename.split('_')[1].split('.')[0]), os.path.join(out_dir, filename))
    return runner


def hook_for(cls, work_dir):
    hook = cls(interval=1, by_epoch=False, max_keep_ckpts=1)
    hook.out_dir, hook.file_backend = str(work_dir), get_file_backend(str(work_dir))
    hook.keep_ckpt_ids = collections.deque(maxlen=1)  # what before_train sets up
    return hook


@pytest.mark.parametrize('hook_cls', [ReliableCheckpointHook, CheckpointHook])
def test_crash_during_a_save_with_max_keep_ckpts_1(tmp_path, monkeypatch, hook_cls):
    """mmengine's CheckpointHook deletes the kept checkpoint before writing the next: a crash then leaves nothing
    to resume from. ReliableCheckpointHook writes first and prunes after."""
    runner, hook = fake_runner(tmp_path), hook_for(hook_cls, tmp_path)
    hook._save_checkpoint_with_step(runner, 1, meta={})
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_1.pth')
    real_replace = os.replace

    def dying_replace(src, dst):  # iter_2.pth is fully written to its temp file, then the process dies
        if str(dst).endswith('iter_2.pth'):
            raise Crash('killed while saving iter_2.pth')
        real_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, 'replace', dying_replace)
    with pytest.raises(Crash):
        hook._save_checkpoint_with_step(runner, 2, meta={})
    monkeypatch.setattr(atomic_io.os, 'replace', real_replace)
    assert not (tmp_path / 'iter_2.pth').exists()
    last = (tmp_path / 'last_checkpoint').read_text()
    assert last == str(tmp_path / 'iter_1.pth')
    if hook_cls is CheckpointHook:
        assert not os.path.exists(last)  # mmengine: last_checkpoint points at a deleted file
        return
    assert safe_torch_load(last)['meta']['iter'] == 1
    # the next successful save replaces it, then prunes iter_1 (max_keep_ckpts=1)
    hook._save_checkpoint_with_step(runner, 3, meta={})
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_3.pth')
    assert not (tmp_path / 'iter_1.pth').exists()
    assert safe_torch_load(str(tmp_path / 'iter_3.pth'))['meta']['iter'] == 3
