"""Folded BatchNorm and channels-last convolutions leave the predictions unchanged (up to float rounding), and
mmcv's compiled ops still see NCHW-contiguous inputs; ``torch.compile`` of CenterMask's fixed-shape part gives the
eager predictions. (A trained model's AP through ``tools/test.py`` with both flags is checked in
``tests/test_learning.py``.)"""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MMLogger

from centermask_mm.engine import InferenceSpeedupHook, speed_up_for_inference
from centermask_mm.engine import GraphedCallable, cuda_graph
from centermask_mm.engine.inference_speedup import compile_fixed_shape
from centermask_mm.models.detectors import CenterMask
from tools.analysis_tools.model_comparison import build_model, make_batch

CONFIGS = {
    'V2-39 (eSE, residual)': 'configs/centermask/centermask_v2-39_fpn_ms-3x_coco.py',
    'V2-39-DCN (mmcv deformable conv)': 'configs/centermask/centermask_v2-39-dcn_fpn_ms-3x_coco.py',
    'R-50 (mmdet ResNet)': 'configs/centermask/centermask_r-50_fpn_ms-3x_coco_maskrcnn-benchmark.py',
    'Lite V-19-slim-dw (depthwise)': 'configs/centermask/centermask-lite_v2-19-slim-dw_fpn_ms-4x_coco.py',
}


def random_statistics(model):
    """BatchNorm statistics and affine parameters away from the identity, so that folding them changes weights."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model


def match(before, after, box_tol=1e-2, score_tol=1e-4):
    """Index in ``after`` of each detection of ``before``: same label, box and score within the tolerances. (Random
    weights give near-tied scores whose order float rounding may swap, so the lists are matched, not zipped.)"""
    free, pairs = set(range(len(after))), []
    for i in range(len(before)):
        close = [j for j in sorted(free) if after.labels[j] == before.labels[i]
                 and (after.bboxes[j] - before.bboxes[i]).abs().max() < box_tol
                 and (after.scores[j] - before.scores[i]).abs() < score_tol]
        assert close, f'detection {i} of {len(before)} (label {before.labels[i]}) has no counterpart'
        free.remove(close[0])
        pairs.append(close[0])
    return pairs


def batch_norms(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def predictions(model, data):
    with torch.no_grad():
        return model.test_step(data)[0].pred_instances


@pytest.mark.parametrize('name', list(CONFIGS))
def test_predictions_unchanged(name):
    plain = random_statistics(build_model(CONFIGS[name], 'cpu'))
    fast = speed_up_for_inference(copy.deepcopy(plain))
    left = len(batch_norms(fast))
    # mmcv folds the BatchNorms after an nn.Conv2d; those after a deformable convolution (not a Conv2d) stay
    assert left < len(batch_norms(plain)) and (left > 0) == ('DCN' in name)
    assert fast.backbone.state_dict() != plain.backbone.state_dict()  # folded weights differ ...
    data = make_batch(1, 128, 160)
    before, after = predictions(plain, data), predictions(fast, data)
    assert len(before) == len(after) == 50
    pairs = match(before, after)  # ... the predictions do not
    # the mask branch (RoIAlign on the channels-last features): MaskIoU scores and masks; the folded weights round
    # differently, and with random weights a MaskIoU score moves by a few 1e-3 of itself where a RoIAlign sample
    # crosses a pixel (seen: 2 of 50 by 1.6e-3 on this machine's torch build)
    torch.testing.assert_close(after.mask_scores[pairs], before.mask_scores, atol=1e-5, rtol=5e-3)
    assert before.masks.sum() > 0
    # pixels at the 0.5 threshold and at box edges (boxes move by ~1e-3 px) may flip; these masks are small
    assert (after.masks[pairs] != before.masks).sum() <= 0.05 * before.masks.sum()


def test_channels_last_reaches_the_convolutions_and_mmcv_ops_see_nchw():
    model = speed_up_for_inference(build_model(CONFIGS['V2-39-DCN (mmcv deformable conv)'], 'cpu'),
                                   fuse_conv_bn=False)
    seen = {}

    def record(name):
        return lambda module, args: seen.setdefault(name, []).append(args[0])

    model.neck.register_forward_pre_hook(record('neck'))
    for module in model.modules():
        if type(module).__module__.startswith('mmcv.ops'):
            module.register_forward_pre_hook(record(type(module).__name__))  # runs after the guard
    predictions(model, make_batch(1, 128, 160))
    assert all(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() for x in seen['neck'][0])
    assert {'RoIAlign', 'ModulatedDeformConv2dPack'} <= set(seen)
    assert all(x.is_contiguous() for name in ('RoIAlign', 'ModulatedDeformConv2dPack') for x in seen[name])


def test_mmcv_roi_align_would_read_channels_last_wrongly():
    """Why the guard exists: mmcv's RoIAlign reads ``data_ptr()`` as NCHW whatever the strides."""
    from mmcv.ops import RoIAlign
    x = torch.randn(1, 8, 20, 24)
    rois = torch.tensor([[0, 2., 3., 15., 12.]])
    op = RoIAlign((7, 7), 1.0, 2, aligned=True)
    assert not torch.allclose(op(x.contiguous(memory_format=torch.channels_last), rois), op(x, rois))


def test_refused_in_training_mode_and_without_an_option():
    model = build_model(CONFIGS['Lite V-19-slim-dw (depthwise)'], 'cpu').train()
    with pytest.raises(RuntimeError, match='inference'):
        speed_up_for_inference(model)
    with pytest.raises(ValueError, match='fuse_conv_bn'):
        InferenceSpeedupHook(fuse_conv_bn=False, channels_last=False)


def test_hook_applies_before_test_and_twice_is_harmless():
    model = build_model(CONFIGS['Lite V-19-slim-dw (depthwise)'], 'cpu')
    runner = SimpleNamespace(model=model, logger=MMLogger.get_current_instance())
    hook = InferenceSpeedupHook()
    hook.before_test(runner)
    weights = copy.deepcopy(model.state_dict())
    hook.before_test(runner)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert len(model.backbone._forward_pre_hooks) == 1


def test_torch_compile_of_the_fixed_shape_part_gives_the_eager_predictions():
    """``torch.compile`` (TorchDynamo's capture; the ``aot_eager`` backend runs the captured graph with PyTorch's
    kernels, so the outputs are bit-identical) becomes the model's ``fixed_shape_runner``; no method is replaced."""
    from tests.test_engine.test_cuda_graph import assert_no_method_replaced
    torch._dynamo.reset()
    plain = build_model(CONFIGS['Lite V-19-slim-dw (depthwise)'], 'cpu')
    compiled = compile_fixed_shape(copy.deepcopy(plain), backend='aot_eager')
    runner = compiled.fixed_shape_runner
    assert runner is not None and plain.fixed_shape_runner is None
    assert_no_method_replaced(compiled)
    assert type(compiled).predict is CenterMask.predict
    data = make_batch(1, 128, 160)
    for _ in range(2):
        before, after = predictions(plain, data), predictions(compiled, data)
        assert len(before) == 50
        for key in ('bboxes', 'scores', 'labels', 'masks', 'mask_scores'):
            assert torch.equal(after.get(key), before.get(key)), key
    assert compile_fixed_shape(compiled) is compiled and compiled.fixed_shape_runner is runner  # twice: harmless


def test_torch_compile_refusals_and_a_backend_that_cannot_compile():
    with pytest.raises(TypeError, match='predict_fixed_shape'):
        compile_fixed_shape(torch.nn.Conv2d(1, 1, 1).eval())
    with pytest.raises(ValueError, match='exclude each other'):
        InferenceSpeedupHook(cuda_graph=True, torch_compile=True)
    model = build_model(CONFIGS['Lite V-19-slim-dw (depthwise)'], 'cpu')
    with pytest.raises(ValueError, match='exclude each other'):
        speed_up_for_inference(model, cuda_graph=True, torch_compile=True)
    model.fixed_shape_runner = GraphedCallable(model.predict_fixed_shape)  # what cuda_graph=True sets
    with pytest.raises(TypeError, match='fixed_shape_runner'):
        compile_fixed_shape(model)
    model.fixed_shape_runner = None

    def cannot_compile(graph_module, example_inputs):
        raise RuntimeError('no compiler here')

    torch._dynamo.reset()
    compile_fixed_shape(model, backend=cannot_compile)  # compiles nothing yet
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match='no compiler here'):
        predictions(model, make_batch(1, 64, 64))  # the first call compiles: the documented error, no fallback
    torch._dynamo.reset()


@pytest.mark.slow
def test_torch_compile_with_inductor_on_the_cpu():
    """The default backend (TorchInductor: C++ kernels from the machine's compiler) on the CPU: the fixed-shape part's
    outputs within float rounding of the eager ones (fused kernels round differently, so near-tied candidates may swap
    places: the indices are not compared). Compiling takes minutes on a small CPU."""
    torch._dynamo.reset()
    model = build_model(CONFIGS['Lite V-19-slim-dw (depthwise)'], 'cpu')
    inputs = model.data_preprocessor(make_batch(1, 64, 96))['inputs']
    with torch.no_grad():
        expected = model.predict_fixed_shape(inputs, model.bbox_head.test_cfg)
        got = compile_fixed_shape(model).fixed_shape_runner(inputs, model.bbox_head.test_cfg)
    torch._dynamo.reset()
    (feats, head_outs, (scores, _)), (feats_e, head_outs_e, (scores_e, _)) = got, expected
    for a, b in zip(cuda_graph._tensors((feats, head_outs, scores)), cuda_graph._tensors((feats_e, head_outs_e,
                                                                                           scores_e))):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
