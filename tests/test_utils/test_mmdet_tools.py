import pytest
import torch

from centermask_mm.utils.mmdet_tools import cpu_distributed_args

CONFIG = 'configs/toy/centermask-lite_v2-19-slim-dw_fpn_toy.py'
CPU_RUNNER = ['--cfg-options', 'runner_type=CPUDistributedRunner']


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


@pytest.mark.parametrize('launcher', [['--launcher', 'pytorch'], ['--launcher=slurm']])
def test_a_distributed_run_without_cuda_chooses_the_cpu_runner(no_cuda, launcher):
    for argv in ([CONFIG, *launcher], [CONFIG, 'ckpt.pth', *launcher, '--work-dir', 'w', '--cfg-options', 'a=1']):
        assert cpu_distributed_args(argv) == argv + CPU_RUNNER


def test_other_runs_are_unchanged(no_cuda, tmp_path):
    chosen = tmp_path / 'chosen.py'
    chosen.write_text("runner_type = 'Runner'\n")
    for argv in ([CONFIG], [CONFIG, '--launcher', 'none'], ['-h'],
                 [CONFIG, '--launcher', 'pytorch', '--cfg-options', 'runner_type=Runner'],
                 [str(chosen), '--launcher', 'pytorch']):  # the config chooses its runner
        assert cpu_distributed_args(argv) == argv


def test_with_cuda_mmengine_runner_is_kept(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert cpu_distributed_args([CONFIG, '--launcher', 'pytorch']) == [CONFIG, '--launcher', 'pytorch']
