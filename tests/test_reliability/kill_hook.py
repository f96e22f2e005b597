"""Test-only hook: the training process SIGKILLs itself after a given iteration (a deterministic hard crash)."""
import os
import signal

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class SigkillAfterIterHook(Hook):
    """Sends SIGKILL to its own process at the end of iteration ``after_iter`` (1-based), after every other hook
    of that iteration (lowest priority), so checkpoints due at that iteration are already written."""

    priority = 'LOWEST'

    def __init__(self, after_iter: int):
        self.after_iter = after_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.after_iter:
            os.kill(os.getpid(), signal.SIGKILL)
