"""Side-by-side speed of instance-segmentation models, each built from its config with random weights, in one process.

The program behind ``compare_models.py``, ``benchmark_speedups.py``, ``profile_predict.py`` and
``check_device_outputs.py`` of this folder (imported by them as a sibling module, by the tests as
``tools.analysis_tools.model_comparison``); the results and how to read them are in ``docs/benchmarks.md``. It
builds configs from this repository's ``configs/`` (and mmdet's wheel), and, for the ``trained`` regime only, replaces
``batched_nms`` in mmdet's and centermask_mm's heads and SOLOv2's per-image prediction, restoring them on exit
(:func:`cap_nms_input`). The generic timing pieces are in :mod:`centermask_mm.utils.benchmark`.

Two regimes, because random weights do not score like trained ones:

* ``worst``: every test-time score threshold set to 0, so each model outputs its full detection count. Not run for
  SOLOv2 (:func:`worst_case_skip_reason`: a mask for every grid cell and class, tens of GB at 800x1216);
* ``trained``: the same, but every class-aware NMS call (mmdet's ``multiclass_nms`` and the dense heads'
  ``_bbox_post_process``, which CenterMask's FCOS uses; not the RPN's) receives at most the ``nms_input`` best
  (box, class) candidates of the image, as a per-image threshold at the k-th highest score would give; a trained
  model sends about that many. (Without it Mask R-CNN's second stage sends 1000 proposals x 80 classes = 80,000
  candidates, which exceeds mmdet's ``split_thr`` and makes its NMS loop class by class.) SOLOv2, which builds a
  mask for every (grid cell, class) candidate before its matrix NMS, gets that per-image threshold itself: at most
  ``nms_input`` candidates get a mask. YOLACT (fast NMS) has its own cap (``top_k``) and is unchanged.

All models are built first and, in each regime, timed round-robin (a warm-up of every model, then rounds of one timed
call per model), so that a slow phase of a shared machine hits every model of a round alike; ratios to the baseline
are taken per round. Peak memory comes from a separate, untimed call.
"""
import contextlib
import copy
import os.path as osp
import statistics
from collections import OrderedDict
from typing import Dict, List, Optional

import mmdet
import torch
from mmdet.models.dense_heads import SOLOV2Head
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from torch.overrides import TorchFunctionMode

from centermask_mm.engine import speed_up_for_inference
from centermask_mm.models.detectors import CenterMask
from centermask_mm.utils.benchmark import (peak_memory_call, ratios_to_baseline, summarize_ms, time_calls,
                                           time_round_robin)

#: this repository's root (this file is ``tools/analysis_tools/model_comparison.py``): the configs of the zoo
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: name -> config (``mmdet::`` = a config shipped in mmdet's wheel). Mask R-CNN R-50 is the reference row.
MODEL_ZOO = OrderedDict([
    ('CenterMask R-50', 'configs/centermask/centermask_r-50_fpn_ms-3x_coco_maskrcnn-benchmark.py'),
    ('CenterMask V2-39', 'configs/centermask/centermask_v2-39_fpn_ms-3x_coco.py'),
    ('CenterMask V2-99', 'configs/centermask/centermask_v2-99_fpn_ms-3x_coco.py'),
    ('CenterMask-Lite V-19', 'configs/centermask/centermask-lite_v2-19_fpn_ms-4x_coco.py'),
    ('CenterMask-Lite V-19-slim-dw', 'configs/centermask/centermask-lite_v2-19-slim-dw_fpn_ms-4x_coco.py'),
    ('CenterMask-Lite V-39', 'configs/centermask/centermask-lite_v2-39_fpn_ms-4x_coco.py'),
    ('Mask R-CNN R-50', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
    ('MS R-CNN R-50', 'mmdet::ms_rcnn/ms-rcnn_r50_fpn_1x_coco.py'),
    ('CondInst R-50', 'mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py'),
    ('YOLACT R-50', 'mmdet::yolact/yolact_r50_1xb8-55e_coco.py'),
    ('RTMDet-Ins-tiny', 'mmdet::rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py'),
    ('RTMDet-Ins-s', 'mmdet::rtmdet/rtmdet-ins_s_8xb32-300e_coco.py'),
    ('SOLOv2 R-50', 'mmdet::solov2/solov2_r50_fpn_1x_coco.py'),
    ('Mask R-CNN V2-39', 'configs/vovnet/mask-rcnn_v2-39_fpn_1x_coco.py'),
])
BASELINE = 'Mask R-CNN R-50'
#: ops that make the host wait for the device on CUDA (counted on the CPU as a device-independent proxy)
SYNC_OPS = ('aten::_local_scalar_dense', 'aten::nonzero', 'aten::is_nonzero')


def config_path(entry: str) -> str:
    if entry.startswith('mmdet::'):
        return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', entry[len('mmdet::'):])
    return osp.join(REPO_ROOT, entry)


#: test-time score thresholds: ``score_thr`` and SOLO's ``filter_thr`` (after matrix NMS, on scores multiplied by the
#: mask scores: with random weights SOLOv2's best scores into matrix NMS stay under the config's 0.05)
SCORE_THRESHOLD_KEYS = ('score_thr', 'filter_thr')


def _zero_score_thresholds(cfg):
    """Every score threshold (:data:`SCORE_THRESHOLD_KEYS`) to 0; zero-size boxes dropped before NMS
    (``min_bbox_size`` 0), because random FCOS regressions (ReLU-clamped) are often degenerate and CenterMask would
    otherwise paste fewer masks than it does with trained weights."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key in SCORE_THRESHOLD_KEYS:
                cfg[key] = 0.0
            elif key == 'min_bbox_size' and value < 0:
                cfg[key] = 0
            else:
                _zero_score_thresholds(value)
    elif isinstance(cfg, list):
        for value in cfg:
            _zero_score_thresholds(value)


def _drop_pretrained(cfg):
    if isinstance(cfg, dict):
        if isinstance(cfg.get('init_cfg'), dict) and cfg['init_cfg'].get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for value in cfg.values():
            _drop_pretrained(value)


#: ``fp32``; ``amp``: ``torch.autocast`` float16 around ``test_step`` (what mmengine's ``TestLoop(fp16=True)`` does:
#: weights are re-cast on every call); ``fp16``: half-precision weights and input (``model.half()``, the image cast
#: once after pre-processing; post-processing runs in whatever dtype the heads return).
PRECISIONS = ('fp32', 'amp', 'fp16')


def set_precision(model: torch.nn.Module, precision: str):
    """Prepare ``model`` for ``precision`` (see :data:`PRECISIONS`); returns the context to run ``test_step`` in."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is not one of {PRECISIONS}')
    if precision == 'amp':
        device_type = next(model.parameters()).device.type
        return lambda: torch.autocast(device_type, dtype=torch.float16)
    if precision == 'fp16':
        model.half()
        preprocessor, forward = model.data_preprocessor, model.data_preprocessor.forward

        def half_inputs(data, training=False):
            out = forward(data, training)
            out['inputs'] = out['inputs'].half()
            return out

        preprocessor.forward = half_inputs
    return contextlib.nullcontext


@contextlib.contextmanager
def _quiet_init():
    """mmengine logs every parameter's initialiser at INFO outside a runner; hide that from the benchmark's output."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        yield
    finally:
        logger.setLevel(level)


def build_model(entry: str, device: str) -> torch.nn.Module:
    """The model of a config with random weights (no pretrained download), every score threshold at 0."""
    cfg = Config.fromfile(config_path(entry))
    model_cfg = copy.deepcopy(cfg.model)
    _drop_pretrained(model_cfg)
    _zero_score_thresholds(model_cfg.get('test_cfg'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    with _quiet_init():
        model.init_weights()
    return model.to(device).eval()


@contextlib.contextmanager
def cap_nms_input(k: Optional[int]):
    """The ``trained`` regime: class-aware NMS sees at most the ``k`` best-scoring candidates of an image, and
    SOLOv2 builds masks for at most ``k`` (grid cell, class) candidates of an image.

    SOLOv2's ``_predict_by_feat_single`` builds a mask for every score above ``cfg.score_thr``; for each call its
    threshold is raised to the (k+1)-th highest score of the image (a copy of the config; the head's own stays as
    it is), so that the scores strictly above it, at most ``k``, get a mask. Scores tied with the (k+1)-th are all
    left out, so ties can give fewer than ``k``, never more."""
    if not k:
        yield
        return
    import mmdet.models.dense_heads.base_dense_head as dense
    import mmdet.models.dense_heads.rtmdet_ins_head as rtmdet_ins
    import mmdet.models.layers.bbox_nms as bbox_nms

    import centermask_mm.models.dense_heads.centermask_fcos_head as centermask_fcos
    modules = (dense, rtmdet_ins, bbox_nms, centermask_fcos)
    original = bbox_nms.batched_nms
    solov2_single = SOLOV2Head._predict_by_feat_single

    def capped(boxes, scores, idxs, nms_cfg, class_agnostic=False):
        if scores.numel() <= k:
            return original(boxes, scores, idxs, nms_cfg, class_agnostic)
        top = scores.topk(k).indices
        dets, keep = original(boxes[top], scores[top], idxs[top], nms_cfg, class_agnostic)
        return dets, top[keep]

    def solov2_capped(head, kernel_preds, cls_scores, mask_feats, img_meta, cfg=None):
        cfg = head.test_cfg if cfg is None else cfg
        if cls_scores.numel() > k:  # a 0-dim tensor threshold: no host sync added
            kth = cls_scores.flatten().topk(k + 1).values[-1]
            cfg = ConfigDict(cfg, score_thr=kth.clamp(min=cfg.score_thr))
        return solov2_single(head, kernel_preds, cls_scores, mask_feats, img_meta, cfg)

    for module in modules:
        module.batched_nms = capped
    SOLOV2Head._predict_by_feat_single = solov2_capped
    try:
        yield
    finally:
        for module in modules:
            module.batched_nms = original
        SOLOV2Head._predict_by_feat_single = solov2_single


def worst_case_skip_reason(model: torch.nn.Module, height: int, width: int) -> Optional[str]:
    """Why ``model`` cannot run the ``worst`` regime at ``height x width``, or None when it can.

    SOLOv2 with every score threshold at 0 builds a mask for each (grid cell, class) score left by its 2x2
    local-maximum filter, before any cap: up to ``sum(num_grids^2) x num_classes`` float32 masks at the mask feature
    resolution (stride 4). With random weights the filter keeps about a quarter of them (docs/benchmarks.md)."""
    head = getattr(model, 'mask_head', None)
    if not isinstance(head, SOLOV2Head):
        return None
    divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1)
    feat_h, feat_w = (-(-size // divisor) * divisor // head.mask_stride for size in (height, width))
    cells = sum(grid**2 for grid in head.num_grids)
    candidates = cells * head.cls_out_channels
    logits_gb = candidates * feat_h * feat_w * 4 / 1e9
    return (f'not run: with score thresholds 0 SOLOv2 builds a {feat_h}x{feat_w} mask for every (grid cell, class) '
            f'local maximum, up to {cells} x {head.cls_out_channels} = {candidates}: up to {logits_gb:.1f} GB of '
            f'float32 mask logits alone (about a quarter of that with random weights), plus their sigmoid and '
            f'boolean copies')


def make_batch(batch_size: int, height: int, width: int, with_gt: bool = False, seed: int = 0) -> dict:
    """``test_step`` / ``train_step`` input: random uint8 images of ``height x width`` (and random GT)."""
    if with_gt:
        from mmdet.testing import demo_mm_inputs
        return demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, height, width)] * batch_size,
                              num_items=[5] * batch_size, num_classes=80, with_mask=True)
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen) for _ in range(batch_size)]
    samples = [DetDataSample(metainfo=dict(img_id=i, img_shape=(height, width), ori_shape=(height, width),
                                           scale_factor=(1.0, 1.0), pad_shape=(height, width)))
               for i in range(batch_size)]
    return dict(inputs=inputs, data_samples=samples)


def count_ops(model, data, nms_input: Optional[int] = None) -> Dict[str, int]:
    """aten operator calls (top level: not counting the ops they call) and sync-like ops of one ``test_step``, in
    the trained-like regime when ``nms_input`` is given (SOLOv2 cannot run uncapped: :func:`worst_case_skip_reason`).
    """
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad(), cap_nms_input(nms_input), profile(activities=[ProfilerActivity.CPU]) as prof:
        model.test_step(data)
    events = [e for e in prof.events() if e.name.startswith('aten::')]
    top = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith('aten::')]
    return dict(aten_calls=len(top), host_syncs=sum(e.name in SYNC_OPS for e in events))


#: Python-level calls that move data between host and device, each a wait for the GPU stream where it happens on
#: one (a host read; a host-to-device copy of pageable memory queued behind the stream): counted device-independently
#: by :func:`count_host_transfers`, since a CPU profile shows neither
HOST_READS = ('tolist', 'item', 'nonzero', '__bool__')
HOST_TO_DEVICE_COPIES = ('tensor', 'new_tensor', 'as_tensor')


class _HostTransferCounter(TorchFunctionMode):

    def __init__(self):
        super().__init__()
        self.reads = self.copies = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, '__name__', None)
        self.reads += name in HOST_READS
        self.copies += name in HOST_TO_DEVICE_COPIES
        return func(*args, **(kwargs or {}))


def count_host_transfers(model, data, nms_input: Optional[int] = None) -> Dict[str, int]:
    """Host reads (:data:`HOST_READS`: ``.tolist()``, ``.item()``, ``nonzero``, ``bool(tensor)``) and host-to-device
    copies (:data:`HOST_TO_DEVICE_COPIES`: ``torch.tensor`` / ``new_tensor`` / ``as_tensor`` of host data) of one
    ``test_step``, as Python calls (a ``TorchFunctionMode``; work inside compiled ops, such as mmcv's NMS reading
    its output size, is not seen)."""
    counter = _HostTransferCounter()
    with torch.no_grad(), cap_nms_input(nms_input), counter:
        model.test_step(data)
    return dict(host_reads=counter.reads, host_to_device_copies=counter.copies)


def stage_times(model, data, total: float, device: str, warmup: int, repeats: int) -> Dict[str, float]:
    """Median ms of pre-processing, backbone + neck, and the rest (heads and post-processing, mask pasting
    included) of a ``test_step`` that took ``total`` ms, from separately timed calls of the first two stages."""
    with torch.no_grad():
        pre = time_calls(lambda: model.data_preprocessor(data, False), device, warmup, repeats)['median_ms']
        inputs = model.data_preprocessor(data, False)['inputs']
        feats = time_calls(lambda: model.extract_feat(inputs), device, warmup, repeats)['median_ms']
    return dict(preprocess_ms=pre, backbone_neck_ms=feats, heads_postprocess_ms=max(total - pre - feats, 0.0))


def flops_and_params(model, data) -> Dict[str, Optional[float]]:
    """Parameters (M) and GFLOPs of mmengine's ``FlopAnalyzer`` on the tensor-mode forward (one multiply-add = 1
    FLOP; None where a head has no tensor mode)."""
    params = sum(p.numel() for p in model.parameters())
    try:
        from mmengine.analysis import FlopAnalyzer
        inputs = model.data_preprocessor(data, False)
        forward = model.forward
        model.forward = lambda x: forward(x, inputs['data_samples'], mode='tensor')
        try:
            flops = FlopAnalyzer(model, inputs['inputs']).total()
        finally:
            model.forward = forward
        gflops = flops / 1e9
    except Exception as err:  # some mmdet heads have no tensor mode; say so instead of failing the run
        gflops = None
        print(f'  FLOPs not counted: {type(err).__name__}: {str(err)[:120]}')
    return dict(params_m=params / 1e6, gflops=gflops)


def predict_gflops(model, data, nms_input: Optional[int]) -> Optional[float]:
    """GFLOPs of one trained-like ``test_step`` on ``data`` (pre-processing to pasted masks: post-processing and the
    mask branch on the detections it actually makes included), counted with ``torch.utils.flop_counter
    .FlopCounterMode``, which counts convolutions and matrix products (not normalisations, element-wise ops,
    interpolation, nor mmcv's compiled ops such as RoIAlign). torch counts a multiply-add as 2 FLOPs; the count is
    halved to mmengine's convention (1 multiply-add = 1 FLOP) to sit beside :func:`flops_and_params`. Works for every
    model, heads without a tensor mode included; None (and a message) if the call fails."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    try:
        with cap_nms_input(nms_input), torch.no_grad(), counter:
            model.test_step(data)
    except Exception as err:  # noqa: BLE001  (report it in the row, as for mmengine's count)
        print(f'  predict FLOPs not counted: {type(err).__name__}: {str(err)[:120]}')
        return None
    return counter.get_total_flops() / 2 / 1e9


def train_step_time(entry: str, device: str, height: int, width: int, warmup: int, repeats: int) -> float:
    """Median ms of ``train_step`` (forward, backward, SGD step) on 2 images with 5 random GT instances each.
    Backbone norms are made trainable (``requires_grad=True``, ``norm_eval=False``) in every model: frozen norms
    with random weights give non-finite losses in some models, which would stop the step before the backward."""
    cfg = Config.fromfile(config_path(entry))
    model_cfg = copy.deepcopy(cfg.model)
    _drop_pretrained(model_cfg)
    backbone = model_cfg.backbone
    if 'norm_cfg' in backbone:
        backbone.norm_cfg = dict(backbone.norm_cfg, requires_grad=True)
    backbone.norm_eval = False
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    with _quiet_init():
        model.init_weights()
    model = model.to(device).train()
    from mmengine.optim import OptimWrapper
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))
    data = make_batch(2, height, width, with_gt=True)
    return time_calls(lambda: model.train_step(data, optim), device, warmup, repeats)['median_ms']


def size_and_operators(model: torch.nn.Module, data: dict, flops: bool, nms_input: Optional[int]) -> dict:
    """Parameters, FLOPs (when ``flops``: mmengine's on the tensor-mode forward, ``gflops``, and torch's on a
    trained-like ``test_step``, ``predict_gflops``) and operator counts of ``model`` on ``data`` (untimed, fp32)."""
    if flops:
        row = flops_and_params(model, data)
        row['predict_gflops'] = predict_gflops(model, data, nms_input)
    else:
        row = dict(params_m=sum(p.numel() for p in model.parameters()) / 1e6, gflops=None, predict_gflops=None)
    row.update(count_ops(model, data, nms_input))
    return row


def run_test_step(model: torch.nn.Module, context, data: dict):
    """``model.test_step(data)`` inside ``context()`` (the precision context of :func:`set_precision`)."""
    with context():
        return model.test_step(data)


def measure_regime(models: Dict[str, tuple], results: Dict[str, dict], regime: str, device: str, height: int,
                   width: int, batch: int, warmup: int, repeats: int, fail, log=print):
    """``results[name][regime]`` for every model of ``models`` (name -> ``(model, precision context)``), run inside
    the regime's context (``dict(skipped=reason)`` for a model that cannot run it: :func:`worst_case_skip_reason`).
    Per model, one untimed call for the peak memory and the detection count; then the batch-1
    and batch-N ``test_step`` timed round-robin (:func:`time_round_robin`), with per-round ratios to
    :data:`BASELINE`; then the stage split, model by model. ``fail(name, phase, error)`` reports a model that
    raises and takes it out of ``models``."""
    one, many = make_batch(1, height, width), make_batch(batch, height, width)

    def step(name, data):
        return run_test_step(*models[name], data)

    rows = OrderedDict()
    for name in list(models):
        reason = worst_case_skip_reason(models[name][0], height, width) if regime == 'worst' else None
        if reason:
            results[name][regime] = dict(skipped=reason)
            log(f'{name}, {regime}: {reason}')
            continue
        try:
            out, peak = peak_memory_call(lambda: step(name, one), models[name][0], device)
            rows[name] = dict(detections=len(out[0].pred_instances), peak_mem_mb=peak)
        except Exception as err:  # noqa: BLE001
            fail(name, f'{regime} regime', err)
    timed = {}
    for key, data in (('batch1', one), ('batch_n', many)):
        calls = OrderedDict((name, (lambda name=name: step(name, data))) for name in rows if name in models)
        timed[key] = time_round_robin(calls, device, warmup, repeats,
                                      lambda name, err: fail(name, f'{regime} regime, {key}', err))
    baseline_timed = BASELINE in timed['batch1'] and BASELINE in timed['batch_n']
    for name, row in rows.items():
        if name not in models:
            continue
        b1, bn = summarize_ms(timed['batch1'][name]), summarize_ms(timed['batch_n'][name])
        row = dict(batch1=dict(b1, times_ms=timed['batch1'][name]), batch_n_ms_per_image=bn['median_ms'] / batch,
                   batch_n_images_per_s=1000 * batch / bn['median_ms'], **row)
        if baseline_timed:
            row['ratio'] = ratios_to_baseline(timed['batch1'][name], timed['batch1'][BASELINE])
            row['batch_n_ratio'] = ratios_to_baseline(timed['batch_n'][name], timed['batch_n'][BASELINE])
        try:
            model, context = models[name]
            with context():
                row.update(stage_times(model, one, b1['median_ms'], device, warmup, repeats))
        except Exception as err:  # noqa: BLE001
            fail(name, f'{regime} regime, stage times', err)
            continue
        results[name][regime] = row
        log(f'{name}, {regime}: {_ms(b1["median_ms"])} ms (batch 1){_ratio_text(row)}, '
            f'{_ms(row["batch_n_ms_per_image"])} ms/img (batch {batch}), {row["detections"]} detections')


def compare(names: List[str], device: str = 'cpu', height: int = 800, width: int = 1216, batch: int = 2,
            warmup: int = 1, repeats: int = 3, nms_input: int = 1000, train: bool = True, flops: bool = True,
            precision: str = 'fp32', fuse_conv_bn: bool = False, channels_last: bool = False,
            cuda_graph: bool = False, log=print, on_result=None) -> Dict[str, dict]:
    """Measure every model of ``names`` (keys of :data:`MODEL_ZOO`); see the module docstring for the regimes.

    ``fuse_conv_bn`` / ``channels_last`` / ``cuda_graph``: :func:`~centermask_mm.engine.speed_up_for_inference`
    applied to every model alike for inference (after the counts, which stay those of the model as built; the
    training step is unchanged); the CUDA graph to the CenterMask models only (it records their fixed-shape part).

    All models are built first (parameters, FLOPs, operator counts taken then, in fp32), then ``precision``
    (:data:`PRECISIONS`) is applied to each; then each regime is measured for all models together
    (:func:`measure_regime`: timings round-robin); then the inference models are freed and the training step (always
    fp32) is timed model by model. A model that fails in any phase is reported with its error (``error``, with the
    phase; what was measured before stays in its row) and leaves the later phases (e.g. mmcv's CUDA NMS takes float32
    boxes only, so mmdet's heads fail with half weights); the run goes on. ``on_result(results)`` is called after
    each phase and model (to save partial results)."""
    results = OrderedDict((name, dict(config=MODEL_ZOO[name], precision=precision, fuse_conv_bn=fuse_conv_bn,
                                      channels_last=channels_last, cuda_graph=cuda_graph)) for name in names)
    models = OrderedDict()  # name -> (model, precision context), the models still measured

    def report():
        if on_result is not None:
            on_result(results)

    def fail(name, phase, err):
        results[name]['error'] = f'{phase}: {type(err).__name__}: {err}'[:500]
        log(f'{name}: FAILED ({results[name]["error"]})')
        if models.pop(name, None) is not None and device.startswith('cuda'):
            torch.cuda.empty_cache()

    one = make_batch(1, height, width)
    for name in names:
        log(f'{name}: {MODEL_ZOO[name]}')
        try:
            model = build_model(MODEL_ZOO[name], device)
            results[name].update(size_and_operators(model, one, flops, nms_input))
            models[name] = (model, set_precision(model, precision))
            graphed = cuda_graph and isinstance(model, CenterMask)  # the graph records CenterMask's fixed-shape part
            if fuse_conv_bn or channels_last or graphed:
                speed_up_for_inference(model, fuse_conv_bn, channels_last, graphed)
        except Exception as err:  # noqa: BLE001  (a benchmark row, not a library path: report and go on)
            fail(name, 'build and count', err)
        report()
    for regime, cap in (('worst', None), ('trained', nms_input)):
        with cap_nms_input(cap), torch.no_grad():
            measure_regime(models, results, regime, device, height, width, batch, warmup, repeats, fail, log)
        report()
    measured = list(models)
    models.clear()  # freed before the training steps build their own
    if device.startswith('cuda'):
        torch.cuda.empty_cache()
    for name in measured if train else ():
        try:
            results[name]['train_step_ms'] = train_step_time(MODEL_ZOO[name], device, height, width, warmup,
                                                              repeats)
            log(f'{name}: training step (batch 2) {_ms(results[name]["train_step_ms"])} ms')
        except Exception as err:  # noqa: BLE001
            fail(name, 'training step', err)
        report()
    return results


def _ms(value: float) -> str:
    return f'{value:.1f}' if value < 100 else f'{value:.0f}'


def _ratio_cell(row: dict, key: str = 'ratio') -> str:
    """``median (min-max)`` of the per-round ratios to the baseline, ``n/a`` without a baseline."""
    ratio = row.get(key)
    return f'{ratio["median"]:.2f} ({ratio["min"]:.2f}-{ratio["max"]:.2f})' if ratio else 'n/a'


def _ratio_text(row: dict) -> str:
    return f', {_ratio_cell(row)} x {BASELINE}' if row.get('ratio') else ''


def markdown(results: Dict[str, dict], batch: int) -> str:
    """Tables with ratios to Mask R-CNN R-50 (when measured) per regime: batch-1 ratios as the median (min-max) of
    the per-round ratios; a model that skipped a regime gets a row saying so and its reason under the table."""
    failed = {name: row['error'] for name, row in results.items() if 'error' in row}
    results = OrderedDict((name, row) for name, row in results.items() if 'error' not in row)
    base = results.get(BASELINE)
    lines = []
    for regime in ('trained', 'worst'):
        lines += [f'\n**{regime}-like regime**\n' if regime == 'trained' else '\n**worst case** (score thresholds 0)\n',
                  f'| model | ms (batch 1) | ratio | ms/img (batch {batch}) | img/s (batch {batch}) | '
                  'backbone+neck ms | heads+post ms | detections | peak mem MB |',
                  '|---|---|---|---|---|---|---|---|---|']
        skipped = []
        for name, row in results.items():
            r = row[regime]
            if 'skipped' in r:
                lines.append(f'| {name} | skipped (below) |' + ' n/a |' * 7)
                skipped.append(f'- {name}, {regime}: {r["skipped"]}')
                continue
            lines.append(f'| {name} | {_ms(r["batch1"]["median_ms"])} ({_ms(r["batch1"]["min_ms"])}-'
                         f'{_ms(r["batch1"]["max_ms"])}) | {_ratio_cell(r)} | {_ms(r["batch_n_ms_per_image"])} | '
                         f'{1000 / r["batch_n_ms_per_image"]:.1f} | '
                         f'{_ms(r["backbone_neck_ms"])} | {_ms(r["heads_postprocess_ms"])} | {r["detections"]} | '
                         f'{r["peak_mem_mb"]:.0f} |')
        if skipped:
            lines += [''] + skipped
    lines += ['\n**size, operators, training**\n',
              '| model | params (M) | GFLOPs | predict GFLOPs (torch count / 2) | aten calls / predict | '
              'sync-like ops / predict | train step ms | train ratio |', '|---|---|---|---|---|---|---|---|']
    for name, row in results.items():
        train = row.get('train_step_ms')
        ratio = f'{train / base["train_step_ms"]:.2f}' if base and train and base.get('train_step_ms') else 'n/a'
        gflops, predict = (f'{row[key]:.0f}' if row.get(key) is not None else 'n/a'
                           for key in ('gflops', 'predict_gflops'))
        lines.append(f'| {name} | {row["params_m"]:.1f} | {gflops} | {predict} | {row["aten_calls"]} | '
                     f'{row["host_syncs"]} | {_ms(train) if train else "n/a"} | {ratio if train else "n/a"} |')
    if failed:
        lines += ['\n**failed**\n'] + [f'- {name}: {error}' for name, error in failed.items()]
    return '\n'.join(lines) + '\n'


def compare_speedups(names: List[str], device: str = 'cpu', height: int = 800, width: int = 1216, warmup: int = 1,
                     repeats: int = 5, nms_input: int = 1000, precision: str = 'fp32', fuse_conv_bn: bool = True,
                     channels_last: bool = True, cuda_graph: bool = False, log=print) -> Dict[str, dict]:
    """Each model of ``names`` as built and with :func:`~centermask_mm.engine.speed_up_for_inference`, timed
    round-robin in the trained-like regime (batch 1, the same random weights in both): per model the median ms of
    each and the median (min-max) of the per-round ratio sped-up / as built, how far the sped-up predictions are
    from the others (largest difference of the score-sorted scores; random weights give near-tied scores, so the
    detections are compared as sorted lists) and whether they are identical (``torch.equal`` on every field: what
    CUDA-graph replay alone must give). A model that fails gets ``error`` instead, and the others go on."""
    calls, results, outputs = OrderedDict(), OrderedDict(), OrderedDict()
    one = make_batch(1, height, width)

    def failed(call, err):
        log(f'{call}: FAILED ({type(err).__name__}: {err})')
        results[call.split('|')[0]] = dict(error=f'{call}: {type(err).__name__}: {err}'[:500])

    for name in names:
        try:  # a model that fails to build, speed up or predict gets an error row; the others are still measured
            model = build_model(MODEL_ZOO[name], device)
            context = set_precision(model, precision)
            fast = speed_up_for_inference(copy.deepcopy(model), fuse_conv_bn, channels_last,
                                          cuda_graph and isinstance(model, CenterMask))
            with cap_nms_input(nms_input), torch.no_grad():
                outputs[name] = [run_test_step(net, context, one)[0].pred_instances for net in (model, fast)]
        except Exception as err:  # noqa: BLE001  (a benchmark row, not a library path: report and go on)
            failed(name, err)
            continue
        for key, net in (('as built', model), ('sped up', fast)):
            calls[f'{name}|{key}'] = lambda net=net, context=context: run_test_step(net, context, one)

    with cap_nms_input(nms_input), torch.no_grad():
        times = time_round_robin(calls, device, warmup, repeats, failed)
    for name, (before, after) in outputs.items():
        if f'{name}|as built' not in times or f'{name}|sped up' not in times:
            continue
        plain, fast = times[f'{name}|as built'], times[f'{name}|sped up']
        score_diff = (before.scores.sort(descending=True).values -
                      after.scores.sort(descending=True).values).abs().max().item() if len(before) == len(after) \
            else float('inf')
        identical = len(before) == len(after) and all(
            torch.equal(before.get(key), after.get(key)) for key in before.keys()
            if isinstance(before.get(key), torch.Tensor))
        results[name] = dict(as_built=summarize_ms(plain), sped_up=summarize_ms(fast), ratio=ratios_to_baseline(fast, plain),
                             detections=[len(before), len(after)], max_sorted_score_diff=score_diff,
                             identical_outputs=identical)
        log(f'{name}: {_ms(statistics.median(plain))} -> {_ms(statistics.median(fast))} ms, '
            f'{results[name]["ratio"]["median"]:.2f}x, score diff {score_diff:.1e}, identical outputs {identical}')
    return results
