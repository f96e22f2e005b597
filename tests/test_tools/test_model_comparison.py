"""The measuring pieces of ``tools/analysis_tools/model_comparison.py`` (the generic timing of
``centermask_mm/utils/benchmark.py``: tests/test_utils/test_benchmark.py; the CLI end to end: test_tools.py)."""

from tools.analysis_tools.model_comparison import BASELINE, markdown


def test_trained_like_regime_caps_the_solov2_candidates(monkeypatch):
    """At most k (grid cell, class) candidates get a mask (counted as the kernels of SOLOv2's dynamic convolution,
    one per candidate), where k is well below the candidates of score thresholds 0; detections still come out."""
    import mmdet.models.dense_heads.solov2_head as solov2_head
    import torch
    import torch.nn.functional as F

    from tools.analysis_tools.model_comparison import (MODEL_ZOO, build_model, cap_nms_input, make_batch,
                                                       worst_case_skip_reason)
    k, seen = 300, {}

    class CountingFunctional:
        """The head's ``F``: records the dynamic convolution's kernel count; fails before building too many."""

        def __getattr__(self, name):
            return getattr(F, name)

        @staticmethod
        def conv2d(inputs, weight, *args, **kwargs):
            seen.setdefault('kernels', []).append(weight.shape[0])
            assert weight.shape[0] <= k, f'{weight.shape[0]} candidates get a mask'
            return F.conv2d(inputs, weight, *args, **kwargs)

    uncapped = solov2_head.SOLOV2Head._predict_by_feat_single

    def record_candidates(head, kernel_preds, cls_scores, mask_feats, img_meta, cfg=None):
        seen['at_threshold_0'] = int((cls_scores > head.test_cfg.score_thr).sum())
        return uncapped(head, kernel_preds, cls_scores, mask_feats, img_meta, cfg)

    monkeypatch.setattr(solov2_head, 'F', CountingFunctional())
    monkeypatch.setattr(solov2_head.SOLOV2Head, '_predict_by_feat_single', record_candidates)
    model = build_model(MODEL_ZOO['SOLOv2 R-50'], 'cpu')
    cells, classes = sum(grid**2 for grid in model.mask_head.num_grids), model.mask_head.num_classes
    assert f'{cells} x {classes} = {cells * classes}' in worst_case_skip_reason(model, 800, 1216)
    with torch.no_grad(), cap_nms_input(k):
        detections = model.test_step(make_batch(1, 256, 320))[0].pred_instances
    assert model.mask_head.test_cfg.score_thr == 0  # the head's config is left as it was
    assert solov2_head.SOLOV2Head._predict_by_feat_single is record_candidates  # restored on exit
    assert seen['at_threshold_0'] > k and len(seen['kernels']) == 1 and 0 < seen['kernels'][0] <= k
    assert 0 < len(detections) <= model.mask_head.test_cfg.max_per_img
    print(f"candidates at threshold 0: {seen['at_threshold_0']}, with a mask: {seen['kernels'][0]} (k {k}), "
          f'detections: {len(detections)}')


def _regime_row(ms, ratio):
    return dict(batch1=dict(median_ms=ms, min_ms=ms, max_ms=ms), ratio=dict(median=ratio, min=ratio, max=ratio),
                batch_n_ms_per_image=ms, backbone_neck_ms=ms / 2, heads_postprocess_ms=ms / 2, detections=100,
                peak_mem_mb=1.0)


def test_markdown_shows_a_skipped_regime_and_a_failed_model():
    measured = dict(params_m=1.0, gflops=None, aten_calls=10, host_syncs=1)
    results = {BASELINE: dict(measured, worst=_regime_row(200.0, 1.0), trained=_regime_row(100.0, 1.0)),
               'SOLOv2 R-50': dict(measured, worst=dict(skipped='not run: too many masks'),
                                   trained=_regime_row(50.0, 0.5)),
               'YOLACT R-50': dict(config='x', error='worst regime: RuntimeError: boom')}
    text = markdown(results, batch=2)
    assert '| SOLOv2 R-50 | skipped (below) |' in text and '- SOLOv2 R-50, worst: not run: too many masks' in text
    assert '| SOLOv2 R-50 | 50.0 (50.0-50.0) | 0.50 (0.50-0.50) |' in text
    assert '- YOLACT R-50: worst regime: RuntimeError: boom' in text and '| YOLACT R-50 |' not in text


def test_predict_flops_are_counted_for_condinst():
    """CondInst's mmdet head has no tensor mode (mmengine's count is n/a): torch's count of one trained-like
    test_step covers it, and counts more than its backbone and neck alone (the heads and the dynamic mask head)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tools.analysis_tools.model_comparison import MODEL_ZOO, build_model, make_batch, predict_gflops
    model = build_model(MODEL_ZOO['CondInst R-50'], 'cpu')
    data = make_batch(1, 128, 160)
    gflops = predict_gflops(model, data, nms_input=1000)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.extract_feat(model.data_preprocessor(data, False)['inputs'])
    backbone_neck_gflops = counter.get_total_flops() / 2 / 1e9
    assert gflops is not None and 0 < backbone_neck_gflops < gflops


def test_compare_speedups_times_both_and_keeps_the_predictions():
    from tools.analysis_tools.model_comparison import compare_speedups
    results = compare_speedups(['CenterMask-Lite V-19-slim-dw'], height=96, width=128, warmup=0, repeats=2,
                               log=lambda *a: None)
    row = results['CenterMask-Lite V-19-slim-dw']
    assert len(row['ratio']['per_round']) == 2 and row['sped_up']['median_ms'] > 0
    assert row['detections'] == [50, 50] and row['max_sorted_score_diff'] < 1e-4
    assert row['identical_outputs'] is False  # folded BatchNorm changes the rounding


def test_compare_speedups_reports_a_failing_model_and_goes_on():
    """cuda_graph on the CPU fails at the speed-up: each model gets an error row, nothing raises; without it the
    graph-free speed-ups of one model that does run are measured (identical outputs when nothing is changed)."""
    from tools.analysis_tools.model_comparison import compare_speedups
    logged = []
    results = compare_speedups(['CenterMask-Lite V-19-slim-dw'], height=96, width=128, warmup=0, repeats=1,
                               cuda_graph=True, log=logged.append)
    assert 'CUDA device' in results['CenterMask-Lite V-19-slim-dw']['error'] and 'FAILED' in logged[0]
    results = compare_speedups(['CenterMask-Lite V-19-slim-dw'], height=96, width=128, warmup=0, repeats=1,
                               fuse_conv_bn=False, channels_last=False, log=logged.append)
    assert results['CenterMask-Lite V-19-slim-dw']['identical_outputs'] is True


def test_trained_like_regime_caps_the_centermask_nms_input(monkeypatch):
    """CenterMask's FCOS head runs mmcv's NMS itself: the cap must reach it (counted in mmcv's ``nms``)."""
    import sys

    import mmcv.ops  # noqa: F401
    import torch

    from tools.analysis_tools.model_comparison import MODEL_ZOO, build_model, cap_nms_input, make_batch
    mmcv_nms = sys.modules['mmcv.ops.nms']  # the module (mmcv.ops.nms is also the function's name)
    sizes, nms = [], mmcv_nms.nms

    def counting_nms(boxes, scores, *args, **kwargs):
        sizes.append(len(boxes))
        return nms(boxes, scores, *args, **kwargs)

    monkeypatch.setattr(mmcv_nms, 'nms', counting_nms)
    model = build_model(MODEL_ZOO['CenterMask-Lite V-19'], 'cpu')
    data = make_batch(2, 96, 128)
    with torch.no_grad():
        model.test_step(data)
        uncapped = list(sizes)
        sizes.clear()
        with cap_nms_input(100):
            model.test_step(data)
    assert len(uncapped) == 2 and min(uncapped) > 100
    assert sizes == [100, 100]


def test_count_host_transfers_counts_python_reads_and_copies():
    import torch

    from tools.analysis_tools.model_comparison import count_host_transfers

    class Toy:
        def test_step(self, data):
            t = torch.tensor([1.0, 0.0])  # one copy
            t.new_tensor([3.0])  # another
            return t.sum().item(), t.tolist(), bool(t[0] > 0), t.nonzero()  # four reads

    assert count_host_transfers(Toy(), None) == dict(host_reads=4, host_to_device_copies=2)


def test_centermask_predict_reads_the_device_at_most_five_times_per_image():
    """The issue's target (host syncs <= 5 per image), for the Python-level reads of a real predict."""
    from tools.analysis_tools.model_comparison import MODEL_ZOO, build_model, count_host_transfers, make_batch
    model = build_model(MODEL_ZOO['CenterMask-Lite V-19-slim-dw'], 'cpu')
    for batch in (1, 3):
        counts = count_host_transfers(model, make_batch(batch, 96, 128), nms_input=1000)
        assert 0 < counts['host_reads'] <= 5 * batch, (batch, counts)
