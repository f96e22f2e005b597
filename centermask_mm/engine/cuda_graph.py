"""CUDA-graph replay of the fixed-shape part of CenterMask's inference: :meth:`CenterMask.predict_fixed_shape`
(backbone, neck, FCOS towers, the FCOS candidate selection).

On a GPU a batch-1 CenterMask predict is bound by the host, not the GPU: it launches many small kernels, each a few
microseconds of host work plus Python (docs/benchmarks.md, "On a GPU"). Most of them are in
``predict_fixed_shape``, whose shapes depend only on the input size. :func:`capture_cuda_graphs` records it once per
input shape in a :class:`torch.cuda.CUDAGraph` and then replays the recorded kernels with one call: the same kernels
on the same data, so the same outputs. It sets the model's ``fixed_shape_runner``, which ``predict`` calls instead of
the method; no method of the model or of its heads is replaced. What follows (decoding of the candidates, NMS, the
mask branch, pasting) depends on the detections and runs as before.

Limits (those of CUDA graphs):

* inference only (eval mode, no autograd: a call with gradients enabled runs the method as it is), and not under
  autocast (runs as it is; half weights, ``--precision fp16``, are replayed);
* one graph per input shape (shape, dtype, strides of every tensor input) and FCOS test cfg (``predict`` passes
  it: the candidate selection's ``score_thr`` and ``nms_pre`` come from it), for the first ``max_shapes`` of them;
  others run eagerly.
  It pays off where the input size is fixed (benchmarks, video, a pipeline with a fixed ``Resize``/``Pad``), not with
  mmdet's keep-ratio test pipeline on COCO, whose images give many sizes;
* the outputs are the graph's own tensors, overwritten by the next call of the same shape: use them (as ``predict``
  does) before calling again, or clone them;
* weights are read where they were when the graph was recorded: apply it last, after loading the checkpoint and the
  other speed-ups (:func:`~centermask_mm.engine.speed_up_for_inference` does), and do not replace parameters
  afterwards (an in-place ``copy_`` into them is seen).

Tested on the CPU with a stand-in for the recording (``tests/test_engine/test_cuda_graph.py``); ``tools/gpu_checks.sh``
checks it on a GPU (predictions identical to eager, timing).
"""
from collections import OrderedDict
from typing import Any, Callable, List, Tuple

import torch
from mmengine.model import is_model_wrapper
from torch import Tensor

from ..models.detectors import CenterMask


def _tensors(tree: Any) -> List[Tensor]:
    """The tensors of a nest of tuples / lists / dicts, depth first."""
    if isinstance(tree, Tensor):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [t for item in tree for t in _tensors(item)]
    if isinstance(tree, dict):
        return [t for key in tree for t in _tensors(tree[key])]
    return []


def _capture(fn: Callable, static_args: Tuple) -> Tuple[Callable[[], None], Any]:
    """Record ``fn(*static_args)`` in a CUDA graph: ``(replay, static_outputs)``. A warm-up call first, on the
    stream that then records (cuDNN's algorithm choice, the cuBLAS workspace of that stream, lazy initialisations and
    the allocator's first blocks must not happen during the recording), as PyTorch's CUDA-graph notes prescribe."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn(*static_args)
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        static_outputs = fn(*static_args)
    torch.cuda.current_stream().wait_stream(stream)
    return graph.replay, static_outputs


class GraphedCallable:
    """``fn`` (a function of tensors) replayed from one recorded CUDA graph per input shape; see the module
    docstring for the limits.

    A call copies its tensor arguments into the graph's static inputs, replays, and returns the graph's static
    outputs. The key of a graph is the shape, dtype, strides and device of every tensor argument (nested in tuples,
    lists or dicts) and the ``repr`` of every other argument. With gradients enabled, or for a new key once
    ``max_shapes`` graphs exist, ``fn`` runs as it is; also under autocast (``--precision amp``, mmengine's
    ``fp16=True`` test loop), whose cached weight casts a graph must not read after the autocast region.

    Args:
        fn: what to record; it must not synchronise with the host (``.item()``, ``nonzero``, ...), which a CUDA
            graph cannot record.
        max_shapes (int): graphs recorded at most.
    """

    def __init__(self, fn: Callable, max_shapes: int = 4):
        if not isinstance(max_shapes, int) or max_shapes < 1:
            raise ValueError(f'GraphedCallable: max_shapes must be an int >= 1, got {max_shapes!r}')
        self.fn, self.max_shapes = fn, max_shapes
        self.graphs = OrderedDict()  # key -> (replay, static args, static outputs)
        self.eager_calls = 0

    @staticmethod
    def key(tree: Any) -> Any:
        if isinstance(tree, Tensor):
            return tuple(tree.shape), tree.dtype, tree.stride(), str(tree.device)
        if isinstance(tree, (tuple, list)):
            return type(tree).__name__, tuple(GraphedCallable.key(item) for item in tree)
        if isinstance(tree, dict):
            return tuple((k, GraphedCallable.key(v)) for k, v in tree.items())
        return repr(tree)

    def __call__(self, *args):
        # under autocast the casts of the weights are cached outside the graph's memory and freed when the autocast
        # region ends: a replay would read freed memory (half weights, fp16, are fine)
        if torch.is_grad_enabled() or torch.is_autocast_enabled('cuda'):
            self.eager_calls += 1
            return self.fn(*args)
        key = self.key(args)
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= self.max_shapes:
                self.eager_calls += 1
                return self.fn(*args)
            static_args = _clone(args)
            replay, static_outputs = _capture(self.fn, static_args)
            entry = self.graphs[key] = (replay, static_args, static_outputs)
        replay, static_args, static_outputs = entry
        for static, given in zip(_tensors(static_args), _tensors(args)):
            static.copy_(given)
        replay()
        return static_outputs


def _clone(tree: Any) -> Any:
    """A copy of the tensors of ``tree`` with their strides (a channels-last input stays channels-last)."""
    if isinstance(tree, Tensor):
        return torch.empty_strided(tree.shape, tree.stride(), dtype=tree.dtype, device=tree.device).copy_(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_clone(item) for item in tree)
    if isinstance(tree, dict):
        return {k: _clone(v) for k, v in tree.items()}
    return tree


def _check_device(model: torch.nn.Module) -> None:
    device = next(model.parameters()).device
    if device.type != 'cuda':
        raise ValueError(f'cuda_graph needs a model on a CUDA device, this one is on {device}')


def capture_cuda_graphs(model: torch.nn.Module, max_shapes: int = 4) -> torch.nn.Module:
    """Replay ``model.predict_fixed_shape`` (a :class:`CenterMask`) from one CUDA graph per input shape and
    selection settings: ``model.fixed_shape_runner = GraphedCallable(model.predict_fixed_shape, max_shapes)``,
    which ``predict`` calls instead of the method (in place, also returned). The rest of ``predict`` runs as before;
    in training mode or with gradients enabled the method runs as it is.

    The candidate selection's ``score_thr`` and ``nms_pre`` come from the method's ``cfg`` argument (the head's test
    cfg, which ``predict`` passes), so they are part of a graph's key: a call with other values than those recorded
    gets its own graph, or runs eagerly once ``max_shapes`` graphs exist; it never replays the old ones.

    Calling it twice is harmless. Raises ``TypeError`` for a model that is not a :class:`CenterMask` (no
    fixed-shape method to record) or already has another ``fixed_shape_runner`` (``torch.compile``),
    ``ValueError`` for a model that is not on a CUDA device and ``RuntimeError`` for one in training mode.
    """
    model = model.module if is_model_wrapper(model) else model
    if not isinstance(model, CenterMask):
        raise TypeError(f'cuda_graph records CenterMask.predict_fixed_shape; {type(model).__name__} has none')
    _check_device(model)
    if model.training:
        raise RuntimeError('cuda_graph is for inference: call model.eval() first')
    if isinstance(model.fixed_shape_runner, GraphedCallable):
        return model
    if model.fixed_shape_runner is not None:
        raise TypeError(f'cuda_graph: the model already has a fixed_shape_runner ({model.fixed_shape_runner!r})')
    model.fixed_shape_runner = GraphedCallable(model.predict_fixed_shape, max_shapes)
    return model
