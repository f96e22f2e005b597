"""A crash in the middle of writing a checkpoint leaves the previous checkpoint and ``last_checkpoint`` loadable
(docs/reliability.md, "a kill while saving loses nothing"): a Python exception at the replace, and a real SIGKILL of
a process half-way through writing a checkpoint's bytes."""
import builtins
import collections
import io
import os
import signal
import subprocess
import sys
import time
import types

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import find_latest_checkpoint
from mmengine.runner.checkpoint import save_checkpoint

import centermask_mm.utils.atomic_io as atomic_io
from centermask_mm.engine import ReliableCheckpointHook
from centermask_mm.utils import safe_torch_load
from tests.helpers import REPO_ROOT
from tests.test_reliability.toy import subprocess_env


class Crash(Exception):
    """Stands in for the process dying mid-write."""


def checkpoint(value, numel=1000):
    return dict(meta=dict(iter=int(value)), state_dict=dict(w=torch.full((numel,), float(value))))


def fake_runner(work_dir, numel=1000):
    """What CheckpointHook._save_checkpoint_with_step and before_train use of a Runner; saves through mmengine's
    save_checkpoint (which writes through the file backend)."""
    runner = types.SimpleNamespace(work_dir=str(work_dir), message_hub=MessageHub.get_instance(f'ckpt-{work_dir}'),
                                   logger=MMLogger.get_current_instance())
    runner.save_checkpoint = lambda out_dir, filename, *args, **kwargs: save_checkpoint(
        checkpoint(filename.split('_')[1].split('.')[0], numel), os.path.join(out_dir, filename))
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


# --- a real SIGKILL while the bytes of a checkpoint are being written ---

NUMEL = 4_000_000  # a 16 MB checkpoint
PAUSE_AFTER = 1 << 20  # bytes of the second checkpoint on disk when the process is killed
PAUSED = 'paused after writing'


def save_and_pause_in_the_second_checkpoint(work_dir, signal_fd):
    """The child process: ``ReliableCheckpointHook`` saves iteration 1, then iteration 2, whose bytes go to disk
    until ``PAUSE_AFTER`` of them are written; then it tells the parent (a line on the pipe ``signal_fd``: the
    file's path) and waits to be killed. Every file opened for writing whose name holds ``iter_2.pth`` (the atomic
    writer's temp file, or the checkpoint itself were it written in place) is wrapped, so the pause happens
    wherever the bytes go."""
    real_open = io.open
    signal_pipe = os.fdopen(int(signal_fd), 'w')

    class PausingFile:
        def __init__(self, f, path):
            self.f, self.path = f, path

        def write(self, data):
            self.f.write(bytes(data[:PAUSE_AFTER]))
            self.f.flush()
            os.fsync(self.f.fileno())
            signal_pipe.write(f'{PAUSED} {self.path} of {len(data)}\n')
            signal_pipe.flush()
            time.sleep(300)  # the parent SIGKILLs this process now; exit with an error should it not
            sys.exit(3)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def opening(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        path = os.readlink(f'/proc/self/fd/{file}') if isinstance(file, int) else os.fspath(file)
        return PausingFile(f, path) if 'w' in mode and 'iter_2.pth' in os.path.basename(path) else f

    builtins.open = io.open = opening  # os.fdopen (the atomic writer's) calls io.open
    runner, hook = fake_runner(work_dir, NUMEL), hook_for(ReliableCheckpointHook, work_dir)
    hook._save_checkpoint_with_step(runner, 1, meta={})
    hook._save_checkpoint_with_step(runner, 2, meta={})
    sys.exit(4)  # not reached: the write pauses


def test_sigkill_while_writing_a_checkpoint(tmp_path):
    """A process SIGKILLed with 1 MB of its second (16 MB) checkpoint written: the previous checkpoint and
    ``last_checkpoint`` load (weights_only), nothing is at ``iter_2.pth``. The half-written bytes stay in the atomic
    writer's hidden temp file (``.iter_2.pth.<random>.tmp``, a kill runs no cleanup), which nothing reads: mmengine's
    ``--resume`` (``find_latest_checkpoint``) goes to iteration 1, and the resumed run's ``before_train`` removes the
    temp file; its next saves are whole and prune as usual."""
    read_end, write_end = os.pipe()
    child = subprocess.Popen(
        [sys.executable, '-c', 'import sys; from tests.test_reliability.test_atomic_checkpoint import '
         'save_and_pause_in_the_second_checkpoint as f; f(*sys.argv[1:])', str(tmp_path), str(write_end)],
        cwd=REPO_ROOT, env=subprocess_env(), pass_fds=(write_end, ), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    os.close(write_end)  # the child's copy is the only one: the pipe ends (EOF) when the child dies
    with os.fdopen(read_end) as pipe:
        try:
            line = pipe.readline()  # blocks until the child is paused inside the write (or has died)
            if line.startswith(PAUSED):
                os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()  # no-op once it is dead
            log = child.communicate(timeout=60)[0]
    assert line.startswith(PAUSED), log[-3000:]
    assert child.returncode == -signal.SIGKILL, log[-3000:]
    written, total = line.split()[-3], int(line.split()[-1])
    assert os.path.getsize(written) == PAUSE_AFTER < total / 10  # killed with a tenth of the bytes written
    names = sorted(os.listdir(tmp_path))
    assert not (tmp_path / 'iter_2.pth').exists(), names
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_1.pth')
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_1.pth')  # what --resume loads
    previous = safe_torch_load(str(tmp_path / 'iter_1.pth'))
    assert previous['meta']['iter'] == 1 and torch.equal(previous['state_dict']['w'], torch.full((NUMEL,), 1.0))
    leftover = [n for n in names if n.startswith('.iter_2.pth.') and n.endswith('.tmp')]
    assert [str(tmp_path / n) for n in leftover] == [written]
    with pytest.raises(RuntimeError, match='zip archive'):
        safe_torch_load(written)  # truncated
    assert sorted(names) == sorted(['iter_1.pth', 'last_checkpoint'] + leftover)

    # the resumed run: its checkpoint hook starts, then saves 2 and 3 (max_keep_ckpts=1)
    runner, hook = fake_runner(tmp_path), hook_for(ReliableCheckpointHook, tmp_path)
    runner.message_hub.update_info('keep_ckpt_ids', [1])  # what the resumed checkpoint's message hub holds
    hook.before_train(runner)
    assert sorted(os.listdir(tmp_path)) == ['iter_1.pth', 'last_checkpoint']  # the temp file removed, nothing else
    for step in (2, 3):
        hook._save_checkpoint_with_step(runner, step, meta={})
        assert sorted(os.listdir(tmp_path)) == [f'iter_{step}.pth', 'last_checkpoint']
        assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / f'iter_{step}.pth')
        assert safe_torch_load(str(tmp_path / f'iter_{step}.pth'))['meta']['iter'] == step
