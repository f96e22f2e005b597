"""``randomness=dict(seed=..., deterministic=...)`` (docs/reliability.md, "determinism") in two toy trainings run side
by side: the setting reaches torch in the training process, and the same seed gives the same losses.

Why no test here can fail for want of ``deterministic=True`` on the CPU: what the flag changes on the CPU is
``torch.use_deterministic_algorithms`` (the cuDNN flags concern GPUs only), and the only CPU operator of this model's
training step found nondeterministic run to run is the accumulating ``index_put_`` (the backward of ``x[index]``),
with repeated indices and only once a tensor is large enough (tens of thousands of elements) to be split across
threads; with the flag it takes a sorted, deterministic path. mmcv's CPU RoIAlign backward, ``scatter_add_`` /
``index_add_``, nearest upsampling and adaptive average pooling backward were found bitwise repeatable on two threads
without the flag, and so was the whole toy step (losses and every gradient, repeated in one process). So the
deterministic=False run below logs the very same losses as the deterministic=True one, which the test asserts: it is
what makes that comparison a check of the seed (weights, data order, the RoI sampler's draws), and should the model
ever gain a thread-nondeterministic step it will show here first. What the flag must do is reach torch, checked in
the training process: deterministic algorithms on, ``cudnn.deterministic`` on and ``cudnn.benchmark`` off (which the
config's ``env_cfg`` turns on), and none of it with deterministic=False."""
import json
import subprocess

import pytest

from centermask_mm.datasets.toy_shapes import generate_toy_shapes
from tests.helpers import REPO_ROOT
from tests.test_reliability.toy import (TOY_DATA, logged_train_scalars, subprocess_env, train_command,
                                        write_config)

pytestmark = pytest.mark.slow
ITERS = 4
LOSSES = ('loss', 'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_mask', 'loss_mask_iou')
SETTINGS = '''
custom_imports = dict(imports=['centermask_mm', 'tests.test_reliability.determinism_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='TorchSettingsHook')]
env_cfg = dict(cudnn_benchmark=True)
randomness = dict(seed=0, deterministic={deterministic})
'''


def test_deterministic_reaches_torch_and_the_same_seed_gives_the_same_losses(tmp_path):
    generate_toy_shapes(str(tmp_path / 'toy'), **TOY_DATA)  # once, before the two runs that read it
    runs = {}
    for deterministic in (True, False):
        config = write_config(tmp_path, f'toy_{deterministic}.py', iters=ITERS, ckpt_interval=ITERS,
                              extra=SETTINGS.format(deterministic=deterministic))
        runs[deterministic] = subprocess.Popen(
            train_command(config, tmp_path / str(deterministic)), cwd=REPO_ROOT, env=subprocess_env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for run in runs.values():
            log = run.communicate(timeout=600)[0]
            assert run.returncode == 0, log[-3000:]
    finally:
        for run in runs.values():
            run.kill()
            run.wait()
    for deterministic in (True, False):
        settings = json.loads((tmp_path / str(deterministic) / 'torch_settings.json').read_text())
        assert settings == [dict(deterministic_algorithms=deterministic, cudnn_deterministic=deterministic,
                                 cudnn_benchmark=not deterministic, initial_seed=0)] * 2, deterministic
    first, second = (logged_train_scalars(tmp_path / str(deterministic)) for deterministic in (True, False))
    assert [r['iter'] for r in first] == [r['iter'] for r in second] == list(range(1, ITERS + 1))
    for a, b in zip(first, second):
        assert all(k in a for k in LOSSES)
        assert {k: a[k] for k in LOSSES} == {k: b[k] for k in LOSSES}, a['iter']  # exactly, not approximately
        assert a['lr'] == b['lr']
    assert len({r['loss'] for r in first}) == ITERS  # the losses move: it is training, not a constant
