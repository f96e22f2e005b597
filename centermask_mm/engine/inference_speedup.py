"""Inference-only speed-ups of a built detector: BatchNorm folded into the convolutions, channels-last tensors, and
(opt-in, CenterMask only) CUDA-graph replay (on a GPU) or ``torch.compile`` of the fixed-shape part of ``predict``.

The first two leave the predictions unchanged up to float rounding (``tests/test_engine/test_inference_speedup.py``
compares them before and after), CUDA-graph replay leaves them identical, ``torch.compile`` identical or within
float rounding (its fused kernels may round differently), and all are for inference only: a folded model has no
BatchNorm left to train.

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
  :meth:`CenterMask.predict_fixed_shape` (backbone, neck, FCOS towers, FCOS candidate selection) replayed from one
  recording per input shape (for fixed input sizes; see that module).
* **torch.compile** (``torch_compile``, off by default): :func:`compile_fixed_shape`, the same method compiled by
  ``torch.compile`` (TorchInductor by default: a C++ compiler on the CPU, Triton on a GPU). The first call of each
  input shape compiles (seconds to minutes); a backend that cannot compile raises at that first call.

Either of the last two sets the model's ``fixed_shape_runner``, which ``predict`` calls instead of the method; they
exclude each other.

:class:`InferenceSpeedupHook` applies them in a runner just before testing (after the checkpoint is loaded), so a
config or ``tools/test.py --fuse-conv-bn --channels-last`` turns them on without touching training or validation.
"""
from typing import Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..models.detectors import CenterMask
from .cuda_graph import capture_cuda_graphs

#: the options and what they do, for error messages and CLI help
SPEEDUPS = ('fuse_conv_bn', 'channels_last', 'cuda_graph', 'torch_compile')


def _contiguous_inputs(module: torch.nn.Module, args: Tuple) -> Tuple:
    return tuple(a.contiguous() if isinstance(a, torch.Tensor) and a.dim() == 4 else a for a in args)


def _channels_last_input(module: torch.nn.Module, args: Tuple) -> Tuple:
    return (args[0].contiguous(memory_format=torch.channels_last), ) + tuple(args[1:])


def _is_mmcv_op(module: torch.nn.Module) -> bool:
    return type(module).__module__.startswith('mmcv.ops')


def compile_fixed_shape(model: torch.nn.Module, **compile_kwargs) -> torch.nn.Module:
    """``model.fixed_shape_runner = torch.compile(model.predict_fixed_shape, **compile_kwargs)`` for a
    :class:`CenterMask` in eval mode (in place, also returned), which ``predict`` calls instead of the method; no
    method of the model is replaced. Compilation happens at the first call of each input shape (``torch.compile``
    guards on the shapes and on the selection settings ``predict`` passes, and recompiles when they change); on the
    CPU TorchInductor needs a C++ compiler, and a backend that cannot compile raises there (``torch._dynamo``'s
    ``BackendCompilerFailed``), not here.

    Calling it twice is harmless. Raises ``TypeError`` for a model that is not a :class:`CenterMask` or already has
    another ``fixed_shape_runner`` (a CUDA graph), ``RuntimeError`` for one in training mode.
    """
    model = model.module if is_model_wrapper(model) else model
    if not isinstance(model, CenterMask):
        raise TypeError(f'torch_compile compiles CenterMask.predict_fixed_shape; {type(model).__name__} has none')
    if model.training:
        raise RuntimeError('torch_compile is for inference: call model.eval() first')
    if isinstance(model.fixed_shape_runner, _CompiledFixedShape):
        return model
    if model.fixed_shape_runner is not None:
        raise TypeError(f'torch_compile: the model already has a fixed_shape_runner ({model.fixed_shape_runner!r})')
    model.fixed_shape_runner = _CompiledFixedShape(torch.compile(model.predict_fixed_shape, **compile_kwargs))
    return model


class _CompiledFixedShape:
    """The compiled method, named as such (so that a second :func:`compile_fixed_shape` recognises it)."""

    def __init__(self, compiled):
        self.compiled = compiled

    def __call__(self, *args):
        return self.compiled(*args)


def speed_up_for_inference(model: torch.nn.Module, fuse_conv_bn: bool = True, channels_last: bool = True,
                           cuda_graph: bool = False, torch_compile: bool = False) -> torch.nn.Module:
    """Apply the inference speed-ups to ``model`` (a detector with a ``backbone``; in place, also returned);
    the CUDA graphs or the compilation last, since they record the weights and the memory format the other two leave.
    ``cuda_graph`` and ``torch_compile`` (CenterMask only) exclude each other.

    Call it after the weights are loaded and only for inference: folding removes the BatchNorms, so the model can
    no longer be trained. Calling it twice is harmless (nothing is left to fold; the format is already set; each
    hook is installed once).
    """
    model = model.module if is_model_wrapper(model) else model
    if cuda_graph and torch_compile:
        raise ValueError('speed_up_for_inference: cuda_graph and torch_compile exclude each other (both replace '
                         'the fixed-shape part of predict)')
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
    if torch_compile:
        compile_fixed_shape(model)
    return model


@HOOKS.register_module()
class InferenceSpeedupHook(Hook):
    """Apply :func:`speed_up_for_inference` to the runner's model before testing (``runner.test()``, after the
    checkpoint is loaded). Validation during training is left alone.

    Args:
        fuse_conv_bn (bool): fold BatchNorm into the preceding convolutions. Default True.
        channels_last (bool): channels-last convolutions (see the module docstring). Default True.
        cuda_graph (bool): CUDA-graph replay of CenterMask's fixed-shape part (backbone, neck, FCOS towers and
            candidate selection), for a test pipeline with a fixed input size (see
            :mod:`centermask_mm.engine.cuda_graph`). Default False.
        torch_compile (bool): ``torch.compile`` of the same part instead (:func:`compile_fixed_shape`). Default
            False.
    """
    priority = 'VERY_LOW'

    def __init__(self, fuse_conv_bn: bool = True, channels_last: bool = True, cuda_graph: bool = False,
                 torch_compile: bool = False):
        if not (fuse_conv_bn or channels_last or cuda_graph or torch_compile):
            raise ValueError(f'InferenceSpeedupHook needs at least one of {SPEEDUPS} set to True')
        if cuda_graph and torch_compile:
            raise ValueError('InferenceSpeedupHook: cuda_graph and torch_compile exclude each other')
        self.fuse_conv_bn, self.channels_last, self.cuda_graph = fuse_conv_bn, channels_last, cuda_graph
        self.torch_compile = torch_compile

    def before_test(self, runner) -> None:
        runner.model.eval()
        speed_up_for_inference(runner.model, self.fuse_conv_bn, self.channels_last, self.cuda_graph,
                               self.torch_compile)
        runner.logger.info(f'inference speed-ups applied: fuse_conv_bn={self.fuse_conv_bn}, '
                           f'channels_last={self.channels_last}, cuda_graph={self.cuda_graph}, '
                           f'torch_compile={self.torch_compile}')
