"""Run mmdet's own command-line tools (shipped in the mmdet wheel under ``mmdet/.mim/tools``) with centermask_mm
imported first, so that the project's configs, modules and :mod:`centermask_mm.compat` patches are in place and
every mmdet flag (``--cfg-options``, ``--resume``, ``--amp``, ``--work-dir``, ``--out``, ``--show-dir`` ...) works
unchanged."""
import argparse
import importlib.util
import os.path as osp
import sys
from typing import Callable, List, Optional, Sequence

import mmdet
import torch
from mmengine.config import Config, DictAction

import centermask_mm  # noqa: F401  (registration + compat patches)

#: the registered name of :class:`centermask_mm.engine.cpu_distributed_runner.CPUDistributedRunner` (by name: utils
#: does not import engine)
CPU_DISTRIBUTED_RUNNER = 'CPUDistributedRunner'


def mmdet_tool_path(relpath: str) -> str:
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', relpath)
    if not osp.exists(path):
        raise FileNotFoundError(f'mmdet tool {relpath} not found at {path}: install mmdet from its wheel, which '
                                'ships the tools under mmdet/.mim/tools')
    return path


def load_mmdet_tool(relpath: str):
    """Import an mmdet tool script as a module (its ``main()`` is not run)."""
    path = mmdet_tool_path(relpath)
    name = 'mmdet_tool_' + relpath.replace('/', '_').replace('.py', '')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_mmdet_tool(relpath: str, argv=None, patch: Optional[Callable] = None):
    """Run ``mmdet/.mim/tools/<relpath>``'s ``main()`` with ``argv`` (default: this process's arguments).

    ``patch(module)`` may replace names in the tool's module before it runs.
    """
    module = load_mmdet_tool(relpath)
    if patch is not None:
        patch(module)
    old_argv = sys.argv
    sys.argv = [mmdet_tool_path(relpath)] + list(sys.argv[1:] if argv is None else argv)
    try:
        return module.main()
    finally:
        sys.argv = old_argv
        _destroy_process_group()


def cpu_distributed_args(argv: Sequence[str]) -> List[str]:
    """The arguments ``argv`` of mmdet's ``tools/train.py`` / ``tools/test.py`` (``CONFIG ...``), plus
    ``--cfg-options runner_type=CPUDistributedRunner`` for a distributed run (``--launcher`` other than ``none``) on a
    machine without CUDA, where mmengine's ``Runner`` cannot start: see
    :mod:`centermask_mm.engine.cpu_distributed_runner`. Unchanged when the config or ``--cfg-options`` already set a
    ``runner_type``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('config', nargs='?')
    parser.add_argument('--launcher', default='none')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args, _ = parser.parse_known_args(argv)
    if args.launcher == 'none' or torch.cuda.is_available() or 'runner_type' in args.cfg_options:
        return list(argv)
    if args.config is not None and 'runner_type' in Config.fromfile(args.config, import_custom_modules=False):
        return list(argv)
    return list(argv) + ['--cfg-options', f'runner_type={CPU_DISTRIBUTED_RUNNER}']


def add_custom_hook(tool_module, hook: dict) -> None:
    """Make the tool's config (``Config.fromfile`` in its module) end its ``custom_hooks`` with ``hook``, whichever
    runner the tool then builds (``Runner.from_cfg`` or ``RUNNERS.build`` with a ``runner_type``)."""
    config_cls = tool_module.Config

    class ConfigWithHook:
        @staticmethod
        def fromfile(*args, **kwargs):
            cfg = config_cls.fromfile(*args, **kwargs)
            cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + [hook]
            return cfg

        def __getattr__(self, name):
            return getattr(config_cls, name)

    tool_module.Config = ConfigWithHook()


def _destroy_process_group():
    """End a distributed run's process group before the interpreter exits: left to interpreter shutdown, gloo's
    threads can be destroyed while still joinable (``terminate called without an active exception``, SIGABRT after a
    finished 2-process CPU run)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank tears the group down while another still talks to it
        dist.destroy_process_group()
