"""Same seed, deterministic=True: two separate toy trainings on CPU log identical losses for 20 iterations."""
import subprocess

import pytest

from centermask_mm.datasets.toy_shapes import generate_toy_shapes
from tests.helpers import REPO_ROOT
from tests.test_reliability.toy import (TOY_DATA, logged_train_scalars, subprocess_env, train_command,
                                        write_config)

pytestmark = pytest.mark.slow
ITERS = 20
LOSSES = ('loss', 'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask', 'loss_mask_iou')


def test_same_seed_gives_identical_losses(tmp_path):
    config = write_config(tmp_path, iters=ITERS, ckpt_interval=ITERS)
    generate_toy_shapes(str(tmp_path / 'toy'), **TOY_DATA)
    runs = [subprocess.Popen(train_command(config, tmp_path / f'run{i}'), cwd=REPO_ROOT, env=subprocess_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    for run in runs:
        log = run.communicate(timeout=400)[0]
        assert run.returncode == 0, log[-3000:]
    first, second = (logged_train_scalars(tmp_path / f'run{i}') for i in range(2))
    assert [r['iter'] for r in first] == [r['iter'] for r in second] == list(range(1, ITERS + 1))
    for a, b in zip(first, second):
        assert all(k in a for k in LOSSES)
        assert {k: a[k] for k in LOSSES} == {k: b[k] for k in LOSSES}, a['iter']  # exactly, not approximately
        assert a['lr'] == b['lr']
    assert len({r['loss'] for r in first}) > 1  # the losses move: it is training, not a constant
