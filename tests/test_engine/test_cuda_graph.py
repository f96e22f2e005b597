"""The CUDA-graph wrapper's plumbing on the CPU: the recording (``torch.cuda.CUDAGraph``, GPU only) is replaced by a
stand-in with a CUDA graph's semantics (the outputs are fixed tensors the replay overwrites, the inputs are read
from fixed tensors), so that what the wrapper adds is checked here: inputs copied in, one recording per shape,
the head not run twice, eager fallbacks. ``tools/gpu_checks.sh`` checks the real graphs on a GPU (predictions
equal to the eager ones, timing)."""
import copy

import pytest
import torch

from centermask_mm.engine import GraphedCallable, capture_cuda_graphs, speed_up_for_inference
from centermask_mm.engine import cuda_graph
from centermask_mm.utils.model_comparison import build_model, make_batch

LITE = 'configs/centermask/centermask-lite_v2-19-slim-dw_fpn_ms-4x_coco.py'


@pytest.fixture
def fake_graphs(monkeypatch):
    """``_capture`` on the CPU: records nothing, a replay re-runs ``fn`` on the static inputs and writes the
    results into the first outputs (the tensors a CUDA graph's replay overwrites)."""
    recordings = []

    def capture(fn, static_args):
        outputs = fn(*static_args)

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


def test_detector_predictions_equal_eager_and_the_head_runs_inside_the_recording_only(fake_graphs):
    plain = build_model(LITE, 'cpu')
    graphed = speed_up_for_inference(copy.deepcopy(plain), fuse_conv_bn=False, channels_last=False, cuda_graph=True)
    first, second = make_batch(1, 128, 160), make_batch(1, 128, 160)
    second['inputs'][0] = second['inputs'][0].flip(-1)  # another image of the same size
    assert len(fake_graphs) == 0
    with torch.no_grad():
        for data in (first, second, first):
            expected = plain.test_step(data)[0].pred_instances
            got = graphed.test_step(data)[0].pred_instances
            assert len(expected) > 0
            for key in ('bboxes', 'scores', 'labels', 'masks', 'mask_scores'):
                assert torch.equal(getattr(got, key), getattr(expected, key)), key
    assert len(fake_graphs) == 1  # one recording for the three calls of one size
    # the head runs once per predict (in the stand-in's replay), not a second time on the replayed features
    levels, original = [], graphed.bbox_head.forward_single
    graphed.bbox_head.forward_single = lambda *args: levels.append(1) or original(*args)
    with torch.no_grad():
        graphed.test_step(first)
    assert len(levels) == len(graphed.bbox_head.strides)
    assert capture_cuda_graphs(graphed) is graphed  # twice: harmless


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


def test_candidate_selection_is_replayed_and_runs_eagerly_when_its_settings_change(fake_graphs, monkeypatch):
    """CenterMask's FCOS candidate selection (score threshold, top-k per level) is part of the recording: one
    selection per predict (in the stand-in's replay), none on the replayed maps; with another ``score_thr`` than the
    recorded one it runs eagerly on the maps, and the predictions follow the new threshold."""
    from centermask_mm.models.dense_heads import CenterMaskFCOSHead
    runs = []
    original = CenterMaskFCOSHead.select_candidates

    def counted(self, *args, **kwargs):
        runs.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CenterMaskFCOSHead, 'select_candidates', counted)
    plain = build_model(LITE, 'cpu')
    graphed = speed_up_for_inference(copy.deepcopy(plain), fuse_conv_bn=False, channels_last=False, cuda_graph=True)
    data = make_batch(1, 128, 160)
    assert plain.bbox_head.test_cfg.score_thr == 0  # compare_models' build: every detection count full

    def check(expected_runs):
        runs.clear()
        with torch.no_grad():
            expected = plain.test_step(data)[0].pred_instances
            got = graphed.test_step(data)[0].pred_instances
        assert len(expected) > 0
        for key in ('bboxes', 'scores', 'labels', 'masks', 'mask_scores'):
            assert torch.equal(getattr(got, key), getattr(expected, key)), key
        assert sum(head is graphed.bbox_head for head in runs) == expected_runs

    check(expected_runs=2)  # the recording and the replay that follows it (the stand-in re-runs the function)
    check(expected_runs=1)  # the replay only: none on the replayed maps
    with torch.no_grad():  # a threshold that 20 (location, class) pairs pass, of the 50 detections so far
        cls_scores = plain.bbox_head(plain.extract_feat(plain.data_preprocessor(data)['inputs']))[0]
        threshold = torch.cat([c.flatten() for c in cls_scores]).sigmoid().topk(21).values[-1].item()
    for model in (plain, graphed):
        model.bbox_head.test_cfg.score_thr = threshold
    check(expected_runs=2)  # the replay (recorded threshold) and the eager selection (the new one)
    with torch.no_grad():
        assert 0 < len(graphed.test_step(data)[0].pred_instances) <= 20
