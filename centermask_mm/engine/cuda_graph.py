"""CUDA-graph replay of the fixed-shape part of a detector's inference (backbone, neck, dense-head convolutions,
CenterMask's candidate selection).

On a GPU a batch-1 CenterMask predict is bound by the host, not the GPU: about 700 operator calls, each a kernel
launch of a few microseconds plus Python, for ~10 ms of kernels (docs/benchmarks.md, "On a GPU"). The backbone,
the neck and the FCOS towers are 281 of those calls (CenterMask V2-39), and the FCOS candidate selection (score
threshold, one top-k per level: ``CenterMaskFCOSHead.select_candidates``) 36 more; their shapes depend only on
the input size. :func:`capture_cuda_graphs` records them once per input shape in a :class:`torch.cuda.CUDAGraph` and
then replays the recorded kernels with one call: the same kernels on the same data, so the same outputs. What
follows (decoding of the candidates, NMS, the mask branch, pasting) depends on the detections and runs as before.

Limits (those of CUDA graphs):

* inference only (eval mode, no autograd: a call with gradients enabled runs the module as it is), and not under
  autocast (runs as it is; half weights, ``--precision fp16``, are replayed);
* one graph per input shape (shape, dtype, strides of every tensor input), for the first ``max_shapes`` shapes; other
  shapes run eagerly. It pays off where the input size is fixed (benchmarks, video, a pipeline with a fixed
  ``Resize``/``Pad``), not with mmdet's keep-ratio test pipeline on COCO, whose images give many sizes;
* the outputs are the graph's own tensors, overwritten by the next call of the same shape: use them (as ``predict``
  does) before calling the model again, or clone them;
* weights are read where they were when the graph was recorded: apply it last, after loading the checkpoint and the
  other speed-ups (:func:`~centermask_mm.engine.speed_up_for_inference` does), and do not replace parameters
  afterwards (an in-place ``copy_`` into them is seen). The candidate selection's ``score_thr`` and ``nms_pre``
  are those of the head's ``test_cfg`` when recorded; if they differ at a call, the selection runs eagerly.

Status (2026-11-26): tested on the CPU with a stand-in for the recording (``tests/test_engine/test_cuda_graph.py``);
not yet run on a GPU, where ``tools/gpu_checks.sh`` checks it first (predictions identical to eager, timing).
"""
from collections import OrderedDict
from typing import Any, Callable, List, Tuple

import torch
from mmengine.model import is_model_wrapper
from torch import Tensor


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
    """Run ``model.extract_feat`` (backbone and neck) and, for a one-stage detector (a ``bbox_head`` with
    ``predict_by_feat``), the head's ``forward`` on those features and, where the head has one (CenterMask's FCOS
    head), its ``select_candidates`` on those maps with its ``test_cfg``, from one CUDA graph per input shape
    (:class:`GraphedCallable`); in place, also returned. The rest of ``predict`` runs as before.

    ``extract_feat`` replays the graph and returns its features; the head's ``forward``, called on those very
    features (the same tuple, as mmdet's ``predict`` passes it), returns the maps the same replay computed without
    launching anything, and ``select_candidates``, called on those maps with the ``test_cfg`` the replay used,
    returns the replay's candidates. In training mode or with gradients enabled all run as they are. Calling it
    twice is harmless. Raises ``ValueError`` for a model that is not on a CUDA device and ``RuntimeError`` for one
    in training mode.
    """
    model = model.module if is_model_wrapper(model) else model
    _check_device(model)
    if model.training:
        raise RuntimeError('cuda_graph is for inference: call model.eval() first')
    if getattr(model, '_cuda_graph', None) is not None:
        return model
    extract = model.extract_feat
    head = getattr(model, 'bbox_head', None)
    head_forward = head.forward if head is not None and hasattr(head, 'predict_by_feat') else None
    select = getattr(head, 'select_candidates', None) if head_forward is not None else None

    def selection_settings():
        return head.test_cfg.get('score_thr', 0.05), head.test_cfg.get('nms_pre', -1)

    def recorded(inputs: Tensor):
        feats = extract(inputs)
        maps = head_forward(feats) if head_forward is not None else None
        # maps: (cls_scores, bbox_preds, centernesses); the settings are Python values, fixed at the recording
        candidates = (select(maps[0], maps[2], head.test_cfg), selection_settings()) if select is not None else None
        return feats, maps, candidates

    graphed = GraphedCallable(recorded, max_shapes)
    last = {}  # what the last replay returned: features, head maps, candidates (with their settings)

    def extract_feat(inputs: Tensor):
        last.clear()
        if model.training or torch.is_grad_enabled():
            return extract(inputs)
        feats, maps, candidates = graphed(inputs)
        if maps is not None:
            last.update(feats=feats, maps=maps, candidates=candidates)
        return feats

    def forward(feats, *args, **kwargs):
        if not args and not kwargs and last.get('feats') is feats:
            return last['maps']
        return head_forward(feats, *args, **kwargs)

    def select_candidates(cls_scores, score_factors, cfg):
        maps, candidates = last.get('maps'), last.get('candidates')
        if (candidates is not None and cls_scores is maps[0] and score_factors is maps[2] and cfg is head.test_cfg
                and candidates[1] == selection_settings()):
            return candidates[0]
        return select(cls_scores, score_factors, cfg)

    model.extract_feat = extract_feat
    if head_forward is not None:
        head.forward = forward
    if select is not None:
        head.select_candidates = select_candidates
    model._cuda_graph = graphed
    return model
