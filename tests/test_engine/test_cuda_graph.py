"""The CUDA-graph wrapper's plumbing on the CPU: the recording (``torch.cuda.CUDAGraph``, GPU only) is replaced by a
stand-in with a CUDA graph's semantics (the outputs are fixed tensors the replay overwrites, the inputs are read
from fixed tensors), so that what the wrapper adds is checked here: inputs copied in, one recording per shape and
selection settings, ``predict`` calling the graphed ``predict_fixed_shape`` through ``fixed_shape_runner`` (no method
replaced), the head not run twice, eager fallbacks. The stand-in runs the recorded region (``fn(*static_args)``, what
``_capture`` records inside ``torch.cuda.graph``) under :class:`HostSyncs`, so that a host synchronisation there,
which aborts a real recording, fails here too. ``tools/gpu_checks.sh`` checks the real graphs on a GPU (predictions
equal to the eager ones, timing)."""
import contextlib
import copy
import types

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from centermask_mm.engine import GraphedCallable, capture_cuda_graphs, speed_up_for_inference
from centermask_mm.engine import cuda_graph
from centermask_mm.models.dense_heads import CenterMaskFCOSHead
from centermask_mm.models.detectors import CenterMask
from tools.analysis_tools.model_comparison import build_model, make_batch

LITE = 'configs/centermask/centermask-lite_v2-19-slim-dw_fpn_ms-4x_coco.py'


#: operators that wait for the device (their result is read on the host or sizes an output), by schema name
SYNCHRONISING_OPS = {
    'aten::_local_scalar_dense',  # .item(), bool(t) (`if t.any():`), int(t), float(t): all end here
    'aten::item', 'aten::is_nonzero', 'aten::equal',
    'aten::nonzero', 'aten::masked_select',  # output size from the data (also torch.where(cond) with one argument)
    'aten::_unique', 'aten::_unique2', 'aten::unique_dim', 'aten::unique_consecutive', 'aten::unique_dim_consecutive',
}


class HostSyncs(TorchDispatchMode):
    """Records what inside its ``with`` block would synchronise a CUDA device with the host, in ``found``.

    On the CPU nothing waits, so the operators are recognised instead: a ``TorchDispatchMode`` sees every ATen
    operator call (after the Python-level composites are decomposed: ``.item()``, ``bool(t)``, ``int(t)`` all reach
    ``aten::_local_scalar_dense``), and counts those in :data:`SYNCHRONISING_OPS`, ``repeat_interleave`` with tensor
    repeats and no ``output_size``, and indexing with a boolean mask (``x[mask]``, ``x[mask] = v``: a ``nonzero``
    inside the kernel, which the mode does not see separately). Copies to the host do not dispatch on the CPU
    (``.cpu()`` of a CPU tensor returns it, ``.tolist()`` and ``.numpy()`` read its memory), so ``Tensor.cpu``,
    ``Tensor.tolist`` and ``Tensor.numpy`` are wrapped for the duration of the block and their calls counted. Not
    detected on the CPU: ``.to(device)`` to the host, which cannot be told from a ``.to`` the model's own (CPU)
    device there."""

    HOST_COPIES = ('cpu', 'tolist', 'numpy')

    def __init__(self):
        super().__init__()
        self.found = []
        self._patches = contextlib.ExitStack()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        if name in SYNCHRONISING_OPS:
            self.found.append(name)
        elif name == 'aten::repeat_interleave' and isinstance(args[0 if len(args) == 1 else 1], torch.Tensor) \
                and kwargs.get('output_size') is None:
            self.found.append(name)
        elif name in ('aten::index', 'aten::index_put', 'aten::index_put_') and any(
                isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in args[1] if i is not None):
            self.found.append(f'{name} with a boolean mask')
        return func(*args, **kwargs)

    def __enter__(self):
        for method in self.HOST_COPIES:
            original = getattr(torch.Tensor, method)

            def counted(tensor, *args, _original=original, _method=method, **kwargs):
                self.found.append(f'Tensor.{_method}')
                return _original(tensor, *args, **kwargs)

            if method in vars(torch.Tensor):
                self._patches.callback(setattr, torch.Tensor, method, original)
            else:  # inherited from torch._C.TensorBase: remove the wrapper again
                self._patches.callback(delattr, torch.Tensor, method)
            setattr(torch.Tensor, method, counted)
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self._patches.close()


class Recordings(list):
    """The stand-in's recordings (their static inputs, in order) and, in ``syncs``, the host synchronisations
    found inside each."""

    def __init__(self):
        super().__init__()
        self.syncs = []


@pytest.fixture
def fake_graphs(monkeypatch):
    """``_capture`` on the CPU: records nothing, a replay re-runs ``fn`` on the static inputs and writes the
    results into the first outputs (the tensors a CUDA graph's replay overwrites). The call standing for the
    recording is ``fn(*static_args)``, exactly what the real ``_capture`` runs inside ``torch.cuda.graph``; it runs
    under :class:`HostSyncs`, whose findings go to ``recordings.syncs``."""
    recordings = Recordings()

    def capture(fn, static_args):
        with HostSyncs() as seen:
            outputs = fn(*static_args)
        recordings.syncs.append(seen.found)

        def replay():
            for out, new in zip(cuda_graph._tensors(outputs), cuda_graph._tensors(fn(*static_args))):
                out.copy_(new)
        recordings.append(static_args)
        return replay, outputs

    monkeypatch.setattr(cuda_graph, '_capture', capture)
    monkeypatch.setattr(cuda_graph, '_check_device', lambda model: None)
    return recordings


def test_graphed_callable_copies_inputs_and_records_once_per_shape(fake_graphs):
    calls = []

    def fn(x, pair):
        calls.append(x.shape)
        return x * 2, [pair[0] + x.sum(), pair[1]]

    graphed = GraphedCallable(fn, max_shapes=2)
    a, b = torch.rand(2, 3), torch.rand(2, 3)
    pair = (torch.ones(1), torch.zeros(2))
    with torch.no_grad():
        out_a = graphed(a, pair)
        assert torch.equal(out_a[0], a * 2)
        out_b = graphed(b, pair)
        assert out_b[0] is out_a[0]  # the same static output, overwritten
        assert torch.equal(out_b[0], b * 2) and torch.equal(out_b[1][0], pair[0] + b.sum())
        assert len(fake_graphs) == 1
        graphed(torch.rand(4, 3), pair)  # another shape: a second recording
        graphed(a.t(), pair)  # other strides: a third would exceed max_shapes -> eager
        assert len(fake_graphs) == 2 and graphed.eager_calls == 1
    out = graphed(a, pair)  # gradients enabled: eager, a fresh output
    assert out[0] is not out_a[0] and graphed.eager_calls == 2
    with pytest.raises(ValueError, match='max_shapes'):
        GraphedCallable(fn, max_shapes=0)


def assert_no_method_replaced(model):
    """No instance attribute of the model or of any submodule shadows a method of its class, and none is a bound
    method: the speed-ups add ``fixed_shape_runner`` and nothing else."""
    for name, module in model.named_modules():
        shadowing = [k for k, v in vars(module).items() if callable(getattr(type(module), k, None))]
        bound = [k for k, v in vars(module).items() if isinstance(v, types.MethodType)]
        assert not shadowing and not bound, (name or 'model', shadowing, bound)


def predictions(model, data):
    with torch.no_grad():
        return model.test_step(data)[0].pred_instances


def assert_same_predictions(got, expected):
    assert len(expected) > 0
    for key in ('bboxes', 'scores', 'labels', 'masks', 'mask_scores'):
        assert torch.equal(getattr(got, key), getattr(expected, key)), key


def test_detector_predictions_equal_eager_and_the_head_runs_inside_the_recording_only(fake_graphs):
    plain = build_model(LITE, 'cpu')
    graphed = speed_up_for_inference(copy.deepcopy(plain), fuse_conv_bn=False, channels_last=False, cuda_graph=True)
    assert isinstance(graphed.fixed_shape_runner, GraphedCallable) and plain.fixed_shape_runner is None
    assert graphed.fixed_shape_runner.fn == graphed.predict_fixed_shape  # the model's own method, graphed
    assert_no_method_replaced(graphed)
    assert type(graphed).predict is CenterMask.predict and type(graphed.bbox_head) is type(plain.bbox_head)
    first, second = make_batch(1, 128, 160), make_batch(1, 128, 160)
    second['inputs'][0] = second['inputs'][0].flip(-1)  # another image of the same size
    assert len(fake_graphs) == 0
    for data in (first, second, first):
        assert_same_predictions(predictions(graphed, data), predictions(plain, data))
    assert len(fake_graphs) == 1  # one recording for the three calls of one size
    assert graphed.fixed_shape_runner.eager_calls == 0
    assert fake_graphs.syncs == [[]]  # see test_the_recorded_region_never_synchronises_with_the_host
    # the head runs once per predict (in the stand-in's replay), not a second time on the replayed features
    calls = []
    graphed.bbox_head.register_forward_hook(lambda *args: calls.append(1))
    predictions(graphed, first)
    assert len(calls) == 1
    runner = graphed.fixed_shape_runner
    assert capture_cuda_graphs(graphed) is graphed and graphed.fixed_shape_runner is runner  # twice: harmless


def test_predict_uses_the_runner_it_is_given(fake_graphs):
    """``predict`` calls ``fixed_shape_runner`` with the batch and the head's test cfg, and decodes its results."""
    model = build_model(LITE, 'cpu')
    data = make_batch(1, 128, 160)
    expected = predictions(model, data)
    seen = []

    def runner(inputs, cfg):
        seen.append(cfg)
        return model.predict_fixed_shape(inputs, cfg)

    model.fixed_shape_runner = runner
    assert_same_predictions(predictions(model, data), expected)
    assert seen == [model.bbox_head.test_cfg]
    model.train()  # not used in training mode
    with torch.no_grad():
        model.predict(model.data_preprocessor(data)['inputs'], model.data_preprocessor(data)['data_samples'])
    assert len(seen) == 1


def test_refused_for_another_model_or_runner(fake_graphs):
    with pytest.raises(TypeError, match='predict_fixed_shape'):
        capture_cuda_graphs(torch.nn.Conv2d(1, 1, 1))
    model = build_model(LITE, 'cpu')
    model.fixed_shape_runner = lambda inputs, cfg: model.predict_fixed_shape(inputs, cfg)  # e.g. torch.compile's
    with pytest.raises(TypeError, match='fixed_shape_runner'):
        capture_cuda_graphs(model)


def test_refused_on_the_cpu_and_in_training():
    model = build_model(LITE, 'cpu')
    with pytest.raises(ValueError, match='CUDA device'):
        speed_up_for_inference(model, fuse_conv_bn=False, channels_last=False, cuda_graph=True)
    model.train()
    with pytest.raises(RuntimeError, match='inference'):
        speed_up_for_inference(model, cuda_graph=True)


def test_autocast_runs_eagerly(fake_graphs, monkeypatch):
    graphed = GraphedCallable(lambda x: x + 1)
    monkeypatch.setattr(torch, 'is_autocast_enabled', lambda device_type=None: True)
    with torch.no_grad():
        graphed(torch.zeros(2))
    assert graphed.eager_calls == 1 and not fake_graphs


def test_candidate_selection_is_replayed_and_follows_changed_settings(fake_graphs, monkeypatch):
    """CenterMask's FCOS candidate selection (score threshold, top-k per level) is part of the recording: one
    selection per predict (in the stand-in's replay), none on the replayed maps. ``score_thr`` and ``nms_pre`` are
    arguments of the recorded method: with another ``score_thr`` than the recorded one, a second recording follows
    the new threshold (the first is not replayed for it); with no room for another recording (``max_shapes=1``) the
    method runs eagerly."""
    runs = []
    original = CenterMaskFCOSHead.select_candidates

    def counted(self, *args, **kwargs):
        runs.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CenterMaskFCOSHead, 'select_candidates', counted)
    plain = build_model(LITE, 'cpu')
    graphed = speed_up_for_inference(copy.deepcopy(plain), fuse_conv_bn=False, channels_last=False, cuda_graph=True)
    one_graph = copy.deepcopy(plain)
    capture_cuda_graphs(one_graph, max_shapes=1)
    data = make_batch(1, 128, 160)
    assert plain.bbox_head.test_cfg.score_thr == 0  # compare_models' build: every detection count full

    def check(model, expected_runs):
        runs.clear()
        expected, got = predictions(plain, data), predictions(model, data)
        assert_same_predictions(got, expected)
        assert sum(head is model.bbox_head for head in runs) == expected_runs
        return got

    check(graphed, expected_runs=2)  # the recording and the replay that follows it (the stand-in re-runs the method)
    check(graphed, expected_runs=1)  # the replay only: none on the replayed maps
    check(one_graph, expected_runs=2)
    with torch.no_grad():  # a threshold that 20 (location, class) pairs pass, of the 50 detections so far
        cls_scores = plain.bbox_head(plain.extract_feat(plain.data_preprocessor(data)['inputs']))[0]
        threshold = torch.cat([c.flatten() for c in cls_scores]).sigmoid().topk(21).values[-1].item()
    for model in (plain, graphed, one_graph):
        model.bbox_head.test_cfg.score_thr = threshold
    recordings = len(fake_graphs)
    assert 0 < len(check(graphed, expected_runs=2)) <= 20  # a new recording (and its replay) for the new threshold
    assert len(fake_graphs) == recordings + 1 and graphed.fixed_shape_runner.eager_calls == 0
    check(graphed, expected_runs=1)  # replayed
    check(one_graph, expected_runs=1)  # no room for a second recording: eager
    assert one_graph.fixed_shape_runner.eager_calls == 1 and len(fake_graphs) == recordings + 1
    graphed.bbox_head.test_cfg.nms_pre = 7  # nms_pre likewise
    plain.bbox_head.test_cfg.nms_pre = 7
    check(graphed, expected_runs=2)
    assert len(fake_graphs) == recordings + 2
    assert fake_graphs.syncs == [[]] * len(fake_graphs)  # no host synchronisation in any recording


def test_the_recorded_region_never_synchronises_with_the_host(fake_graphs):
    """What a CUDA graph records, ``predict_fixed_shape`` (backbone, neck, FCOS towers, candidate selection), holds
    no host synchronisation: on a GPU one aborts the recording (``cudaErrorStreamCaptureUnsupported``). The stand-in
    runs exactly the region the real recording runs, under :class:`HostSyncs` (the recordings of the other tests here
    are checked too: with other selection settings, with folded BatchNorm and channels-last). Here with a batch of
    two, and a control: the rest of ``predict`` (decoding, NMS, the mask branch) does synchronise (the kept candidates
    are selected with a ``nonzero``), so the detector sees the model's operators and the region ends before them."""
    model = speed_up_for_inference(build_model(LITE, 'cpu'), fuse_conv_bn=False, channels_last=False,
                                   cuda_graph=True)
    data = model.data_preprocessor(make_batch(2, 64, 96))
    with torch.no_grad(), HostSyncs() as whole_predict:
        results = model.predict(data['inputs'], data['data_samples'])
    assert all(len(r.pred_instances) > 0 for r in results)
    assert len(fake_graphs) == 1 and fake_graphs.syncs == [[]]
    assert 'aten::nonzero' in whole_predict.found


@pytest.mark.parametrize('name, make_sync', [
    ('item', lambda x: x.sum().item()),
    ('if any', lambda x: 1 if x.any() else 0),
    ('int', lambda x: int(x.argmax())),
    ('nonzero', lambda x: x.nonzero()),
    ('one-argument where', lambda x: torch.where(x > 0.5)),
    ('boolean index', lambda x: x[x > 0.5]),
    ('boolean assignment', lambda x: x.clone().__setitem__(x > 0.5, 0)),
    ('repeat_interleave', lambda x: torch.arange(3).repeat_interleave(torch.tensor([1, 2, 0]))),
    ('cpu', lambda x: x.cpu()),
    ('tolist', lambda x: x.tolist()),
    ('numpy', lambda x: np.asarray(x)),
])
def test_host_syncs_finds_each_kind_of_synchronisation(name, make_sync):
    """The detector the stand-in runs the recorded region under finds what a CUDA-graph recording refuses, and
    nothing in code without it; the patched methods are restored."""
    x = torch.rand(6)
    methods = {method: getattr(torch.Tensor, method) for method in HostSyncs.HOST_COPIES}
    with HostSyncs() as seen:
        make_sync(x)
    assert len(seen.found) >= 1, name
    assert {method: getattr(torch.Tensor, method) for method in HostSyncs.HOST_COPIES} == methods
    with HostSyncs() as seen:  # what the recorded region may do: shapes known beforehand, no value read
        y = torch.where(x > 0.5, x, -1.0).topk(3).values.cumsum(0)
        x.new_zeros(2).masked_fill_(torch.tensor([True, False]), 1.0)
        x[torch.tensor([0, 2])] = y[:2]
        torch.arange(3).repeat_interleave(2)
    assert seen.found == []


def test_all_speedups_together_give_the_plain_predictions(fake_graphs):
    """``fuse_conv_bn + channels_last + cuda_graph`` (what ``speed_up_for_inference`` applies in that order, the
    graph last): the recording and its replays give the plain model's predictions within the tolerances of the
    folded-BN / channels-last comparison (``test_inference_speedup.test_predictions_unchanged``); the recording
    sees the folded weights and the channels-last convolutions."""
    from tests.test_engine.test_inference_speedup import batch_norms, match, random_statistics
    plain = random_statistics(build_model(LITE, 'cpu'))
    fast = speed_up_for_inference(copy.deepcopy(plain), fuse_conv_bn=True, channels_last=True, cuda_graph=True)
    assert not batch_norms(fast) and isinstance(fast.fixed_shape_runner, GraphedCallable)
    seen = []
    fast.neck.register_forward_pre_hook(lambda module, args: seen.append(args[0][0]))
    first, second = make_batch(1, 128, 160), make_batch(1, 128, 160, seed=1)
    for data in (first, second):  # recorded (and replayed), replayed with other inputs
        before, after = predictions(plain, data), predictions(fast, data)
        assert len(before) == len(after) == 50
        pairs = match(before, after)
        torch.testing.assert_close(after.mask_scores[pairs], before.mask_scores, atol=1e-5, rtol=5e-3)
        assert before.masks.sum() > 0
        assert (after.masks[pairs] != before.masks).sum() <= 0.05 * before.masks.sum()
    assert len(fake_graphs) == 1 and fast.fixed_shape_runner.eager_calls == 0 and fake_graphs.syncs == [[]]
    assert seen and all(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() for x in seen)
