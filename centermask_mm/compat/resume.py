"""How the two stacks' train loops pass over the iterations already done when a run resumes.

Official mmengine 0.10.x's ``IterBasedTrainLoop`` calls ``next()`` on the dataloader once per done iteration, so the
data pipeline runs again for each of them and its random draws (numpy's and Python's global generators, e.g.
``RandomFlip``) are replayed: with ``num_workers=0`` the generators end where the interrupted run left them.
onedl-mmengine >= 0.10.12 skips them without loading (``skip_iter``: the sampler is fast-forwarded), so nothing is
replayed and the generators must be restored from the checkpoint, after the skip. Epoch-based loops resume at an
epoch boundary and replay nothing on either stack.
"""
from mmengine.runner import IterBasedTrainLoop

from .stack import installed_stack


def train_loop_replays_skipped_data(train_loop) -> bool:
    """True if ``train_loop``, resuming, runs the data pipeline of the iterations already done in this process."""
    return installed_stack() == 'openmmlab' and isinstance(train_loop, IterBasedTrainLoop)
