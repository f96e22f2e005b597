"""Test-only hook: writes what the training process's torch was set to (deterministic algorithms, cuDNN flags, the
seed) to ``<work_dir>/torch_settings.json``, at the start of training and again after the first iteration."""
import json
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class TorchSettingsHook(Hook):

    def _settings(self):
        return dict(deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
                    cudnn_deterministic=torch.backends.cudnn.deterministic,
                    cudnn_benchmark=torch.backends.cudnn.benchmark, initial_seed=torch.initial_seed())

    def before_train(self, runner):
        self.seen = [self._settings()]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter == 0:
            self.seen.append(self._settings())
            with open(osp.join(runner.work_dir, 'torch_settings.json'), 'w') as f:
                json.dump(self.seen, f)
