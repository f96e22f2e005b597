"""A toy CenterMask-Lite training SIGKILLed between two checkpoints and resumed with ``--resume`` ends exactly where
an uninterrupted run with the same seed ends: weights, optimizer state, LR schedulers, iteration count."""
import subprocess

import numpy as np
import pytest
import torch

from centermask_mm.datasets.toy_shapes import generate_toy_shapes
from centermask_mm.utils import safe_torch_load
from tests.helpers import REPO_ROOT
from tests.test_reliability.toy import TOY_DATA, subprocess_env, train, train_command, write_config

pytestmark = [pytest.mark.slow, pytest.mark.stack_differences]  # the fork skips done iterations unloaded

ITERS, INTERVAL, KILL_AFTER = 6, 2, 5  # checkpoints at 2, 4, 6; killed after iteration 5 (iter_4 written)
KILL = '''
custom_imports = dict(imports=['centermask_mm', 'tests.test_reliability.kill_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='SigkillAfterIterHook', after_iter={kill})]
'''


def assert_close_tree(a, b, path='', atol=1e-6):
    """Same structure, equal non-tensors, tensors within ``atol``."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_close_tree(a[key], b[key], f'{path}/{key}', atol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close_tree(x, y, f'{path}/{i}', atol)
    elif isinstance(a, torch.Tensor):
        assert a.shape == b.shape and a.dtype == b.dtype, path
        if a.numel():
            assert (a.double() - b.double()).abs().max().item() <= atol, path
    else:
        assert a == b, path


def test_killed_and_resumed_training_matches_an_uninterrupted_run(tmp_path):
    config = write_config(tmp_path, iters=ITERS, ckpt_interval=INTERVAL)
    killed_config = write_config(tmp_path, 'toy_killed.py', iters=ITERS, ckpt_interval=INTERVAL,
                                 extra=KILL.format(kill=KILL_AFTER))
    generate_toy_shapes(str(tmp_path / 'toy'), **TOY_DATA)  # once, before the two runs that read it
    full_dir, killed_dir = tmp_path / 'uninterrupted', tmp_path / 'killed'
    # the two runs are independent: run them side by side
    killed = subprocess.Popen(train_command(killed_config, killed_dir), cwd=REPO_ROOT, env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    train(config, full_dir)
    killed_log = killed.communicate(timeout=300)[0]
    assert killed.returncode == -9, killed_log[-3000:]  # died by SIGKILL
    assert (killed_dir / 'iter_4.pth').exists() and not (killed_dir / 'iter_6.pth').exists()
    assert (killed_dir / 'last_checkpoint').read_text().strip() == str(killed_dir / 'iter_4.pth')

    log = train(config, killed_dir, '--resume').stdout
    assert 'resumed epoch: 0, iter: 4' in log
    full, resumed = (safe_torch_load(str(d / f'iter_{ITERS}.pth')) for d in (full_dir, killed_dir))

    assert full['meta']['iter'] == resumed['meta']['iter'] == ITERS
    weights = full['state_dict']
    assert weights.keys() == resumed['state_dict'].keys()
    max_diff = max((weights[k].double() - resumed['state_dict'][k].double()).abs().max().item() for k in weights)
    assert max_diff <= 1e-6
    assert_close_tree(full['optimizer'], resumed['optimizer'])  # AdamW moments, step counts, lr of each group
    assert_close_tree(full['param_schedulers'], resumed['param_schedulers'])  # last_step, _last_value
    assert [g['lr'] for g in full['optimizer']['param_groups']] == \
        [g['lr'] for g in resumed['optimizer']['param_groups']]
    assert torch.equal(full['rng_state']['torch'], resumed['rng_state']['torch'])
    # the data pipeline's generators (RandomFlip draws from numpy's) end where the uninterrupted run's end
    full_numpy, resumed_numpy = full['rng_state']['numpy'], resumed['rng_state']['numpy']
    assert full_numpy[0] == resumed_numpy[0] == 'MT19937' and full_numpy[2:] == resumed_numpy[2:]
    assert np.array_equal(full_numpy[1], resumed_numpy[1])
    assert full['rng_state']['python'] == resumed['rng_state']['python']

