"""Inference-only speed-ups of a built detector: BatchNorm folded into the convolutions, channels-last tensors, and
(on a GPU, opt-in) CUDA-graph replay of the backbone, neck and dense head.

The first two leave the predictions unchanged up to float rounding (``tests/test_engine/test_inference_speedup.py``
compares them before and after), CUDA-graph replay leaves them identical, and all are for inference only: a folded
model has no BatchNorm left to train.

* **Folded BatchNorm** (``fuse_conv_bn``): mmcv's :func:`mmcv.cnn.fuse_conv_bn`, which replaces each BatchNorm that
  directly follows a ``Conv2d`` by ``Identity`` and scales that convolution's weight and bias by the frozen
  statistics, ``w' = w * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps) + beta``. It is what mmdet
  2.x's ``tools/test.py --fuse-conv-bn`` did. Fewer passes over the feature maps (on the CPU the BatchNorms of the
  ResNet/VoVNet stages at 1/4 resolution are memory-bound); GroupNorm (FCOS towers) is not folded.
* **Channels-last** (``channels_last``): convolution weights and the backbone input in
  ``torch.channels_last`` memory format, which oneDNN (CPU) and cuDNN (GPU) convolve without the NCHW <-> NHWC
  reorders they otherwise add around each convolution. mmcv's compiled ops (RoIAlign, deformable convolution, ...)
  read their input through ``data_ptr()`` as if it were NCHW-contiguous and would silently compute on a permuted
  tensor; every mmcv op module therefore gets its 4-D inputs made contiguous first (a forward pre-hook).
* **CUDA graphs** (``cuda_graph``, off by default): :func:`~centermask_mm.engine.cuda_graph.capture_cuda_graphs`,
  the same kernels replayed from one recording per input shape (for fixed input sizes; see that module).

:class:`InferenceSpeedupHook` applies them in a runner just before testing (after the checkpoint is loaded), so a
config or ``tools/test.py --fuse-conv-bn --channels-last`` turns them on without touching training or validation.
"""
from typing import Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from .cuda_graph import capture_cuda_graphs

#: the options and what they do, for error messages and CLI help
SPEEDUPS = ('fuse_conv_bn', 'channels_last', 'cuda_graph')


def _contiguous_inputs(module: torch.nn.Module, args: Tuple) -> Tuple:
    return tuple(a.contiguous() if isinstance(a, torch.Tensor) and a.dim() == 4 else a for a in args)


def _channels_last_input(module: torch.nn.Module, args: Tuple) -> Tuple:
    return (args[0].contiguous(memory_format=torch.channels_last), ) + tuple(args[1:])


def _is_mmcv_op(module: torch.nn.Module) -> bool:
    return type(module).__module__.startswith('mmcv.ops')


def speed_up_for_inference(model: torch.nn.Module, fuse_conv_bn: bool = True, channels_last: bool = True,
                           cuda_graph: bool = False) -> torch.nn.Module:
    """Apply the inference speed-ups to ``model`` (a detector with a ``backbone``; in place, also returned);
    the CUDA graphs last, since they record the weights and the memory format the other two leave.

    Call it after the weights are loaded and only for inference: folding removes the BatchNorms, so the model can
    no longer be trained. Calling it twice is harmless (nothing is left to fold; the format is already set; each
    hook is installed once).
    """
    model = model.module if is_model_wrapper(model) else model
    if model.training:
        raise RuntimeError('speed_up_for_inference is for inference: call model.eval() first (folding BatchNorm '
                           'into the convolutions would freeze the statistics a training step updates)')
    if fuse_conv_bn:
        from mmcv.cnn import fuse_conv_bn as mmcv_fuse_conv_bn
        mmcv_fuse_conv_bn(model)
    if channels_last and not getattr(model, '_channels_last_hooks', False):
        model.to(memory_format=torch.channels_last)
        if not hasattr(model, 'backbone'):
            raise TypeError(f'channels_last needs a detector with a backbone, got {type(model).__name__}')
        model.backbone.register_forward_pre_hook(_channels_last_input)
        for module in model.modules():
            if _is_mmcv_op(module):
                module.register_forward_pre_hook(_contiguous_inputs)
        model._channels_last_hooks = True
    if cuda_graph:
        capture_cuda_graphs(model)
    return model


@HOOKS.register_module()
class InferenceSpeedupHook(Hook):
    """Apply :func:`speed_up_for_inference` to the runner's model before testing (``runner.test()``, after the
    checkpoint is loaded). Validation during training is left alone.

    Args:
        fuse_conv_bn (bool): fold BatchNorm into the preceding convolutions. Default True.
        channels_last (bool): channels-last convolutions (see the module docstring). Default True.
        cuda_graph (bool): CUDA-graph replay of backbone, neck and dense head, for a test pipeline with a fixed
            input size (see :mod:`centermask_mm.engine.cuda_graph`). Default False.
    """
    priority = 'VERY_LOW'

    def __init__(self, fuse_conv_bn: bool = True, channels_last: bool = True, cuda_graph: bool = False):
        if not (fuse_conv_bn or channels_last or cuda_graph):
            raise ValueError(f'InferenceSpeedupHook needs at least one of {SPEEDUPS} set to True')
        self.fuse_conv_bn, self.channels_last, self.cuda_graph = fuse_conv_bn, channels_last, cuda_graph

    def before_test(self, runner) -> None:
        runner.model.eval()
        speed_up_for_inference(runner.model, self.fuse_conv_bn, self.channels_last, self.cuda_graph)
        runner.logger.info(f'inference speed-ups applied: fuse_conv_bn={self.fuse_conv_bn}, '
                           f'channels_last={self.channels_last}, cuda_graph={self.cuda_graph}')
