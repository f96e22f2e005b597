"""Distributed training and testing on machines without a CUDA device (torchrun + gloo on CPU).

mmengine 0.10.7's ``Runner`` assumes CUDA as soon as a launcher is set: ``init_dist`` calls
``torch.cuda.set_device(LOCAL_RANK)`` (a RuntimeError without a GPU) with the config's backend (``nccl`` in mmdet's
default runtime, which has no CPU support), and ``wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
``DistributedDataParallel``, which torch refuses for a CPU module. torch's ``SyncBatchNorm`` only runs on GPUs.
:class:`CPUDistributedRunner` changes exactly those steps, and only when a launcher is set and CUDA is not available.

It is chosen like any custom runner, by ``runner_type='CPUDistributedRunner'`` in a config or
``--cfg-options runner_type=CPUDistributedRunner``: mmdet's ``tools/train.py`` and ``tools/test.py`` then build it
with ``RUNNERS.build(cfg)``. It is registered in mmengine's root ``RUNNERS``, which both find whatever the default
scope (``train.py`` builds from mmengine's registry, ``test.py`` from mmdet's, a child of it). Our
``tools/train.py`` and ``tools/test.py`` (and so ``tools/dist_train.sh`` / ``tools/dist_test.sh``) add that option
themselves for a distributed run without CUDA (:func:`centermask_mm.utils.mmdet_tools.cpu_distributed_args`).
"""
import copy
import datetime
import logging

import torch
import torch.distributed as torch_dist
from mmengine.dist import is_distributed
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner
from torch.nn.parallel import DistributedDataParallel


def _sync_bn_types():
    types = [torch.nn.SyncBatchNorm]
    try:
        from mmcv.ops import SyncBatchNorm as MMCVSyncBatchNorm
        types.append(MMCVSyncBatchNorm)
    except ImportError:  # mmcv without compiled ops
        pass
    return tuple(types)


def has_sync_bn(model: torch.nn.Module) -> bool:
    """Whether ``model`` holds a torch or mmcv ``SyncBatchNorm`` layer."""
    types = _sync_bn_types()
    return any(isinstance(m, types) for m in model.modules())


def _warn(message: str) -> None:
    print_log(message, logger='current', level=logging.WARNING)


@RUNNERS.register_module()
class CPUDistributedRunner(Runner):
    """mmengine's ``Runner``, which also runs distributed (``--launcher pytorch``) without CUDA.

    With CUDA available, or without a launcher, it is ``Runner`` unchanged. Without CUDA and with a launcher:

    * ``setup_env``: the process group is initialised from torchrun's environment with the ``gloo`` backend (a
      configured ``env_cfg.dist_cfg.backend`` other than gloo, e.g. mmdet's default ``nccl``, is replaced with a
      warning; the other ``dist_cfg`` keys, e.g. ``timeout`` in seconds, are kept), instead of mmengine's
      ``init_dist``, which calls ``torch.cuda.set_device``. Only the ``pytorch`` launcher (torchrun) is supported.
    * ``wrap_model``: SyncBN layers (``norm_cfg=dict(type='SyncBN')`` or ``cfg.sync_bn``, which is ignored) are
      reverted to plain BatchNorm (mmengine's ``revert_sync_batchnorm``) with a warning, since torch's SyncBatchNorm
      has no CPU implementation: each process then normalises with the statistics of its own batch (as
      ``SyncBN`` does on a single GPU); the parameters stay synchronised by DDP, the BN running statistics are
      each process's own (the checkpoint holds rank 0's). The model is wrapped with ``device_ids=None``, as DDP
      requires for a CPU module.
    """

    def _cpu_distributed(self) -> bool:
        return self._distributed and not torch.cuda.is_available()

    def setup_env(self, env_cfg: dict) -> None:
        if self._cpu_distributed() and not is_distributed():
            if self._launcher != 'pytorch':
                raise RuntimeError(f'distributed runs without CUDA support the pytorch launcher (torchrun, '
                                   f'tools/dist_train.sh) only, got launcher={self._launcher!r}')
            dist_cfg = copy.deepcopy(dict(env_cfg.get('dist_cfg', None) or {}))
            backend = dist_cfg.pop('backend', 'nccl')
            if backend != 'gloo':
                _warn(f'No CUDA device: distributed backend {backend!r} replaced with gloo (CPU)')
            if dist_cfg.get('timeout') is not None:
                dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
            torch_dist.init_process_group(backend='gloo', **dist_cfg)
        super().setup_env(env_cfg)  # sees the initialised process group and skips init_dist

    def wrap_model(self, model_wrapper_cfg, model):
        if not self._cpu_distributed() or is_model_wrapper(model):
            return super().wrap_model(model_wrapper_cfg, model)
        if self.cfg.get('sync_bn', None) is not None:
            _warn(f'No CUDA device: cfg.sync_bn={self.cfg.sync_bn!r} ignored (SyncBatchNorm needs a GPU)')
        if has_sync_bn(model):
            _warn('No CUDA device: SyncBN layers reverted to BatchNorm (torch has no CPU SyncBatchNorm); each '
                  'process normalises with the statistics of its own batch')
            model = revert_sync_batchnorm(model)
        if model_wrapper_cfg is None:
            model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                     find_unused_parameters=self.cfg.get('find_unused_parameters', False))
        model_wrapper_cfg = copy.deepcopy(dict(model_wrapper_cfg))
        model_wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
        wrapper_type = MODEL_WRAPPERS.get(model_wrapper_cfg['type'])
        if isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel):
            model_wrapper_cfg['device_ids'] = None  # a CPU module: DDP refuses device ids
        return MODEL_WRAPPERS.build(model_wrapper_cfg, default_args=dict(module=model))
