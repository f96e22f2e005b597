"""A CheckpointHook whose checkpoints survive a crash during saving and whose resume continues the same run."""
import glob
import os
import os.path as osp
import random

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import IterBasedTrainLoop

from ..compat.resume import train_loop_replays_skipped_data
from ..utils.atomic_io import atomic_write_bytes, leftover_temp_files


@HOOKS.register_module()
class ReliableCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with three differences, each of which mmengine lacks:

    * **Save, then prune.** With ``max_keep_ckpts=k`` mmengine deletes the oldest kept checkpoint *before* writing
      the new one, so with ``k=1`` a crash during the save leaves no checkpoint at all and ``last_checkpoint``
      pointing at a deleted file. Here the new checkpoint and ``last_checkpoint`` are written first and the
      outdated ones removed afterwards (the same ones mmengine would remove).
    * **Atomic ``last_checkpoint``.** mmengine rewrites it with ``open(..., 'w')``; here it is written with
      :func:`~centermask_mm.utils.atomic_io.atomic_write_bytes`. (The checkpoint file itself is written atomically
      by :class:`~centermask_mm.compat.atomic_writes.AtomicLocalBackend`, registered on import.)
    * **RNG states.** The checkpoint also stores the global random states under ``'rng_state'``: torch CPU (and
      CUDA), numpy and Python's ``random``. On ``--resume`` the torch state is restored before the first resumed
      training step (an iteration loop) or before training (an epoch loop, which builds its data iterator, a torch
      draw, after that); without it a resumed run draws different random numbers than an uninterrupted one (the
      RoI sampler's ``torch.randperm``), so the weights differ. numpy's and Python's (the data pipeline's draws,
      e.g. ``RandomFlip``) are restored in ``before_train``, unless the train loop replays the pipeline of the
      skipped iterations, which ends them in the same place
      (:func:`~centermask_mm.compat.resume.train_loop_replays_skipped_data`: official mmengine's iteration loop
      does, exactly with ``num_workers=0``; the maintained fork skips them unloaded, drawing nothing from them).

    A process killed while writing a checkpoint leaves its hidden temp file (``.iter_N.pth.<random>.tmp``, as large
    as the checkpoint) next to the checkpoints; ``before_train`` removes those of this hook's file names, and of
    ``last_checkpoint``, on the main process (local directories only).
    """

    _loaded_rng = (None, None)  # (iteration, rng_state) of the checkpoint loaded last
    _torch_rng_to_restore = None  # rng_state whose torch part the first resumed iteration restores

    def _save_checkpoint_with_step(self, runner, step, meta):
        # mmengine 0.10.7's CheckpointHook._save_checkpoint_with_step, reordered: save, then prune. The kept ids
        # and last_ckpt go into the message hub before the save (the checkpoint records them, as in mmengine) and
        # are rolled back if the save fails, so a later save still prunes what is really on disk.
        kept, outdated = list(getattr(self, 'keep_ckpt_ids', ())), []  # only set up when max_keep_ckpts > 0
        new_kept = kept
        if self.max_keep_ckpts > 0 and not (kept and kept[-1] == step):
            new_kept = kept + [step]
            outdated, new_kept = new_kept[:-self.max_keep_ckpts], new_kept[-self.max_keep_ckpts:]
        previous_last = getattr(self, 'last_ckpt', None)
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        hub = runner.message_hub
        hub.update_info('keep_ckpt_ids', new_kept)
        hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir, ckpt_filename, self.file_client_args, save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                backend_args=self.backend_args, **self.args)
        except BaseException:
            self.last_ckpt = previous_last
            hub.update_info('keep_ckpt_ids', kept)
            hub.update_info('last_ckpt', previous_last)
            raise
        if self.max_keep_ckpts > 0:
            self.keep_ckpt_ids.clear()
            self.keep_ckpt_ids.extend(new_kept)
        if not is_main_process():
            return
        atomic_write_bytes(str(self.last_ckpt).encode('utf-8'), osp.join(runner.work_dir, 'last_checkpoint'))
        for old_step in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)

    def _remove_leftover_temp_files(self, runner) -> None:
        if not is_main_process() or not isinstance(self.file_backend, LocalBackend) or \
                self.filename_tmpl.count('{}') != 1:
            return
        leftovers = leftover_temp_files(self.out_dir, glob.escape(self.filename_tmpl).replace('{}', '*'))
        leftovers += leftover_temp_files(runner.work_dir, 'last_checkpoint')
        for path in leftovers:
            os.remove(path)
        if leftovers:
            runner.logger.info(f'removed {len(leftovers)} temp file(s) of checkpoint saves that did not finish: '
                               f'{leftovers}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = dict(
            torch=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            numpy=np.random.get_state(),
            python=random.getstate())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # called for load_from and resume alike, before the runner knows the resumed iteration: keep it for
        # before_train, which restores it only if training continues from this checkpoint's iteration
        self._loaded_rng = (checkpoint.get('meta', {}).get('iter'), checkpoint.get('rng_state'))

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._remove_leftover_temp_files(runner)
        loaded_iter, rng_state = self._loaded_rng
        self._loaded_rng = (None, None)
        if rng_state is None or not runner.iter or runner.iter != loaded_iter:
            return
        # numpy / Python: before the data of the first resumed iteration is loaded
        if 'numpy' in rng_state and not train_loop_replays_skipped_data(runner.train_loop):
            np.random.set_state(rng_state['numpy'])
            random.setstate(rng_state['python'])
        # torch: building a DataLoader iterator draws a seed from torch's generator. An iteration loop built it at
        # the start of the interrupted run (the fork builds it again after its skip), an epoch loop builds one per
        # epoch, after this hook: the state goes back just before the first resumed step, or now.
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            self._torch_rng_to_restore = rng_state
        else:
            self._restore_torch_rng(rng_state)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        rng_state, self._torch_rng_to_restore = self._torch_rng_to_restore, None
        if rng_state is not None:
            self._restore_torch_rng(rng_state)

    @staticmethod
    def _restore_torch_rng(rng_state) -> None:
        torch.set_rng_state(rng_state['torch'])
        cuda_states = rng_state.get('cuda') or []
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
