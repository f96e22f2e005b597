"""The checkpoint-loading patch: mmengine's local loader reads with ``weights_only=True``, mmengine's own checkpoint
types are allow-listed, and the patch can be undone."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_checkpoint
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from centermask_mm.compat import disable_safe_checkpoint_loading, enable_safe_checkpoint_loading, installed_stack
from centermask_mm.utils import UnsafeCheckpointError


class _RunsShellOnLoad:
    """Unpickling this calls os.system (a classic malicious .pth payload)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


def _write_malicious_checkpoint(path, sentinel):
    payload = {'state_dict': {'w': torch.zeros(1)}, 'meta': _RunsShellOnLoad(f'touch {sentinel}')}
    torch.save(payload, path)


def test_local_loader_is_ours():
    assert CheckpointLoader._schemes[''].__module__ == 'centermask_mm.compat.checkpoint_loading'


@pytest.mark.parametrize('force_no_weights_only', [False, True])
def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path, monkeypatch, force_no_weights_only):
    if force_no_weights_only:  # the switch that disables torch's check must not open the door either
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    ckpt, sentinel = tmp_path / 'evil.pth', tmp_path / 'pwned'
    _write_malicious_checkpoint(ckpt, sentinel)
    model = torch.nn.Linear(1, 1)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(model, str(ckpt), map_location='cpu')
    message = str(info.value)
    assert str(ckpt) in message and 'system' in message and 'Nothing from it was executed' in message
    assert isinstance(info.value, pickle.UnpicklingError)
    assert not sentinel.exists()


def test_mmengine_types_round_trip(tmp_path):
    buffer = HistoryBuffer()
    for value in (1.0, 2.5, 3.0):
        buffer.update(value)
    checkpoint = dict(
        meta=dict(seed=1, iter=3, dataset_meta=dict(classes=('a', 'b'), palette=[(1, 2, 3)])),
        state_dict={'weight': torch.ones(2)},
        message_hub=dict(log_scalars={'train/loss': buffer}, runtime_info={'iter': 3, 'arr': np.arange(3)},
                         resumed_keys={'iter': True}))
    path = tmp_path / 'ok.pth'
    torch.save(checkpoint, path)
    loaded = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(6.5 / 3)
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss']._log_history, np.ndarray)
    assert loaded['message_hub']['runtime_info']['arr'].tolist() == [0, 1, 2]


class _GetattrPayload:
    """Unpickling this calls getattr(numpy.ndarray, 'tofile'): only HistoryBuffer statistics may be fetched."""

    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrPayload()}, path)
    with pytest.raises(UnsafeCheckpointError, match='not allowed'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_disable_puts_mmengine_back_and_enable_repatches(tmp_path):
    path, buffer = tmp_path / 'history.pth', HistoryBuffer()
    buffer.update(1.0)
    torch.save({'buffer': buffer}, path)
    try:
        disable_safe_checkpoint_loading()
        assert CheckpointLoader._schemes[''].__module__ == 'mmengine.runner.checkpoint'
        assert HistoryBuffer not in torch.serialization.get_safe_globals()
        if installed_stack() == 'openmmlab':
            with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):  # torch >= 2.6 without the patch
                CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
        else:  # the fork's own helper, which allow-lists its types for the call (and retries unsafely)
            assert mmengine_checkpoint._safe_torch_load.__module__ == 'mmengine.runner.checkpoint'
            assert isinstance(CheckpointLoader.load_checkpoint(str(path), map_location='cpu')['buffer'], HistoryBuffer)
    finally:
        enable_safe_checkpoint_loading()
    assert CheckpointLoader._schemes[''].__module__ == 'centermask_mm.compat.checkpoint_loading'
    if installed_stack() == 'onedl':
        assert mmengine_checkpoint._safe_torch_load.__module__ == 'centermask_mm.compat.checkpoint_loading'
    assert isinstance(CheckpointLoader.load_checkpoint(str(path), map_location='cpu')['buffer'], HistoryBuffer)


class _FakeObjectStore:
    """Stands in for the petrel/s3 backend of mmengine's ``s3://`` loader: ``get`` returns a file's bytes."""

    def __init__(self, path):
        self.path = path

    def get(self, filename):
        return self.path.read_bytes()


@pytest.mark.stack_differences  # the fork's non-local loaders retried refused files with weights_only=False
@pytest.mark.parametrize('scheme', ['open-mmlab://', 's3://'])
def test_other_loaders_refuse_a_malicious_checkpoint_on_either_stack(tmp_path, monkeypatch, scheme):
    ckpt, sentinel = tmp_path / 'evil.pth', tmp_path / 'pwned'
    _write_malicious_checkpoint(ckpt, sentinel)
    if scheme == 'open-mmlab://':  # a model name of the user's open_mmlab.json, a file in MMENGINE_HOME
        monkeypatch.setenv('MMENGINE_HOME', str(tmp_path))
        (tmp_path / 'open_mmlab.json').write_text('{"evil_model": "evil.pth"}')
        filename = 'open-mmlab://evil_model'
    else:
        monkeypatch.setattr(mmengine_checkpoint, 'get_file_backend', lambda *args, **kwargs: _FakeObjectStore(ckpt))
        filename = 's3://bucket/evil.pth'
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    assert not sentinel.exists()
