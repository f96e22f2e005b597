import socket

import pytest
import torch
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import RUNNERS
from torch.nn.modules.batchnorm import _BatchNorm

from centermask_mm.engine import CPUDistributedRunner
from centermask_mm.engine.cpu_distributed_runner import has_sync_bn


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_found_by_runner_type_in_the_registries_of_mmdet_tools():
    from mmdet.registry import RUNNERS as MMDET_RUNNERS
    for registry in (RUNNERS, MMDET_RUNNERS):  # mmdet's tools/train.py, tools/test.py build from these
        assert registry.get('CPUDistributedRunner') is CPUDistributedRunner
    from centermask_mm.utils.mmdet_tools import CPU_DISTRIBUTED_RUNNER
    assert CPU_DISTRIBUTED_RUNNER == CPUDistributedRunner.__name__  # the name the tools set as runner_type


def runner_stub(cfg):
    """A ``CPUDistributedRunner`` with just what ``wrap_model`` reads (no model, data or work dir built)."""
    runner = CPUDistributedRunner.__new__(CPUDistributedRunner)
    runner.cfg, runner._distributed = Config(cfg), True
    return runner


@pytest.mark.parametrize('how', ['norm_cfg', 'cfg.sync_bn'])
def test_syncbn_is_reverted_on_a_cpu_ddp_run(how, tmp_path, monkeypatch):
    """SyncBN from a model's norm_cfg (or mmengine's cfg.sync_bn, which would convert every BN) becomes BN and the
    model is wrapped in DDP without device ids (a one-process gloo group: the same code path as 2 processes)."""
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    norm = 'SyncBN' if how == 'norm_cfg' else 'BN'
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.SyncBatchNorm(4) if norm == 'SyncBN'
                                else torch.nn.BatchNorm2d(4))
    assert has_sync_bn(model) == (norm == 'SyncBN')
    runner = runner_stub(dict(sync_bn='torch') if how == 'cfg.sync_bn' else {})
    torch.distributed.init_process_group('gloo', rank=0, world_size=1, init_method=f'file://{tmp_path}/pg')
    try:
        wrapped = runner.wrap_model(None, model)
        assert isinstance(wrapped, MMDistributedDataParallel) and wrapped.device_ids is None
        assert not has_sync_bn(wrapped)
        assert any(isinstance(m, _BatchNorm) for m in wrapped.modules())
        wrapped.train()
        out = wrapped.module(torch.rand(2, 3, 8, 8))  # runs on CPU (SyncBatchNorm would raise here)
        assert out.shape == (2, 4, 6, 6)
    finally:
        torch.distributed.destroy_process_group()
