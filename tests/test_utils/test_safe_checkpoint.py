import os
import pickle

import pytest
import torch

from centermask_mm.utils import UnsafeCheckpointError, safe_torch_load


class _RunsShellOnLoad:
    """Unpickling this calls os.system (a classic malicious .pth payload)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


def test_tensors_and_builtin_containers_load(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save({'state_dict': {'w': torch.arange(3.)}, 'meta': {'iter': 3, 'classes': ('a', 'b')}}, path)
    loaded = safe_torch_load(str(path), map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.)) and loaded['meta'] == {'iter': 3,
                                                                                          'classes': ('a', 'b')}


@pytest.mark.parametrize('force_no_weights_only', [False, True])
def test_a_file_that_runs_code_is_refused_with_its_name(tmp_path, monkeypatch, force_no_weights_only):
    if force_no_weights_only:  # the switch that disables torch's check must not open the door either
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    path, sentinel = tmp_path / 'evil.pth', tmp_path / 'pwned'
    torch.save({'w': torch.zeros(1), 'meta': _RunsShellOnLoad(f'touch {sentinel}')}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(str(path))
    message = str(info.value)
    assert f'Refused to load checkpoint {str(path)!r}' in message and 'system' in message
    assert 'Nothing from it was executed' in message and 'weights_only` set to `False' not in message
    assert isinstance(info.value, pickle.UnpicklingError)
    assert not sentinel.exists()
