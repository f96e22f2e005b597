"""Side-by-side speed of instance-segmentation models, each built from its config with random weights, in one process.

Used by ``tools/analysis_tools/compare_models.py``; the results and how to read them are in ``docs/benchmarks.md``.

Two regimes, because random weights do not score like trained ones:

* ``worst``: every test-time score threshold set to 0, so each model outputs its full detection count;
* ``trained``: the same, but every class-aware NMS call (mmdet's ``multiclass_nms`` and the dense heads'
  ``_bbox_post_process``, which CenterMask's FCOS uses; not the RPN's) receives at most the ``nms_input`` best
  (box, class) candidates of the image, as a per-image threshold at the k-th highest score would give; a trained
  model sends about that many. (Without it Mask R-CNN's second stage sends 1000 proposals x 80 classes = 80,000
  candidates, which exceeds mmdet's ``split_thr`` and makes its NMS loop class by class.) SOLOv2 (matrix NMS) and
  YOLACT (fast NMS) have their own caps (``nms_pre``, ``top_k``) and are unchanged.
"""
import contextlib
import copy
import os.path as osp
import statistics
import threading
import time
from collections import OrderedDict
from typing import Dict, List, Optional

import mmdet
import psutil
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope

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
#: measured only when named explicitly: with every score threshold at 0, SOLOv2 builds a mask for each grid cell and
#: class before any cap (3872 cells x 80 classes at 800x1216), which ran past 11 GB and 10 minutes on CPU; with its
#: default threshold (0.1) random weights give no detection at all.
NOT_BY_DEFAULT = ('SOLOv2 R-50', )
BASELINE = 'Mask R-CNN R-50'
#: ops that make the host wait for the device on CUDA (counted on the CPU as a device-independent proxy)
SYNC_OPS = ('aten::_local_scalar_dense', 'aten::nonzero', 'aten::is_nonzero')


def config_path(entry: str) -> str:
    if entry.startswith('mmdet::'):
        return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', entry[len('mmdet::'):])
    return osp.join(REPO_ROOT, entry)


def _zero_score_thresholds(cfg):
    """Every ``score_thr`` to 0; zero-size boxes dropped before NMS (``min_bbox_size`` 0), because random FCOS
    regressions (ReLU-clamped) are often degenerate and CenterMask would otherwise paste fewer masks than it does
    with trained weights."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'score_thr':
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
    """The ``trained`` regime: class-aware NMS sees at most the ``k`` best-scoring candidates of an image."""
    if not k:
        yield
        return
    import mmdet.models.dense_heads.base_dense_head as dense
    import mmdet.models.dense_heads.rtmdet_ins_head as rtmdet_ins
    import mmdet.models.layers.bbox_nms as bbox_nms
    modules = (dense, rtmdet_ins, bbox_nms)
    original = bbox_nms.batched_nms

    def capped(boxes, scores, idxs, nms_cfg, class_agnostic=False):
        if scores.numel() <= k:
            return original(boxes, scores, idxs, nms_cfg, class_agnostic)
        top = scores.topk(k).indices
        dets, keep = original(boxes[top], scores[top], idxs[top], nms_cfg, class_agnostic)
        return dets, top[keep]

    for module in modules:
        module.batched_nms = capped
    try:
        yield
    finally:
        for module in modules:
            module.batched_nms = original


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


def _sync(device: str):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_calls(fn, device: str, warmup: int, repeats: int) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(1000 * (time.perf_counter() - start))
    return dict(median_ms=statistics.median(times), min_ms=min(times), max_ms=max(times))


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms (CPU; on CUDA use the allocator)."""

    def __enter__(self):
        self.process, self.peak, self.running = psutil.Process(), 0, True
        self.base = self.process.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss - self.base)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def count_ops(model, data) -> Dict[str, int]:
    """aten operator calls (top level: not counting the ops they call) and sync-like ops of one ``test_step``."""
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model.test_step(data)
    events = [e for e in prof.events() if e.name.startswith('aten::')]
    top = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith('aten::')]
    return dict(aten_calls=len(top), host_syncs=sum(e.name in SYNC_OPS for e in events))


def stage_times(model, data, total: float, device: str, warmup: int, repeats: int) -> Dict[str, float]:
    """Median ms of pre-processing, backbone + neck, and the rest (heads and post-processing, mask pasting
    included) of a ``test_step`` that took ``total`` ms, from separately timed calls of the first two stages."""
    with torch.no_grad():
        pre = time_calls(lambda: model.data_preprocessor(data, False), device, warmup, repeats)['median_ms']
        inputs = model.data_preprocessor(data, False)['inputs']
        feats = time_calls(lambda: model.extract_feat(inputs), device, warmup, repeats)['median_ms']
    return dict(preprocess_ms=pre, backbone_neck_ms=feats, heads_postprocess_ms=max(total - pre - feats, 0.0))


def flops_and_params(model, data) -> Dict[str, Optional[float]]:
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


def measure(entry: str, device: str, height: int, width: int, batch: int, warmup: int, repeats: int,
            nms_input: int, train: bool, flops: bool, precision: str, log=print) -> dict:
    """One row of :func:`compare` (see there)."""
    model = build_model(entry, device)
    one, many = make_batch(1, height, width), make_batch(batch, height, width)
    row = dict(config=entry, precision=precision)
    if flops:
        row.update(flops_and_params(model, one))
    else:
        row.update(params_m=sum(p.numel() for p in model.parameters()) / 1e6, gflops=None)
    row.update(count_ops(model, one))
    context = set_precision(model, precision)
    for regime, cap in (('worst', None), ('trained', nms_input)):
        if device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        with cap_nms_input(cap), torch.no_grad(), context():
            with PeakRSS() as mem:
                b1 = time_calls(lambda: model.test_step(one), device, warmup, repeats)
            bn = time_calls(lambda: model.test_step(many), device, warmup, repeats)
            stages = stage_times(model, one, b1['median_ms'], device, warmup, repeats)
            detections = len(model.test_step(one)[0].pred_instances)
        row[regime] = dict(batch1=b1, batch_n_ms_per_image=bn['median_ms'] / batch,
                           batch_n_images_per_s=1000 * batch / bn['median_ms'], detections=detections,
                           peak_mem_mb=(torch.cuda.max_memory_allocated() if device.startswith('cuda')
                                        else mem.peak) / 2**20, **stages)
        log(f'  {regime}: {_ms(b1["median_ms"])} ms (batch 1), {_ms(row[regime]["batch_n_ms_per_image"])} ms/img '
            f'(batch {batch}), {detections} detections')
    model = None  # freed before the training step builds its own
    if train:
        row['train_step_ms'] = train_step_time(entry, device, height, width, warmup, repeats)
        log(f'  training step (batch 2): {_ms(row["train_step_ms"])} ms')
    return row


def compare(names: List[str], device: str = 'cpu', height: int = 800, width: int = 1216, batch: int = 2,
            warmup: int = 1, repeats: int = 3, nms_input: int = 1000, train: bool = True, flops: bool = True,
            precision: str = 'fp32', log=print, on_result=None) -> Dict[str, dict]:
    """Measure every model of ``names`` (keys of :data:`MODEL_ZOO`); see the module docstring for the regimes.
    ``precision`` applies to inference (:data:`PRECISIONS`); parameters, FLOPs and operator counts are taken in fp32
    before it is applied, the training step is always fp32. A model that fails is reported with its error (e.g.
    mmcv's CUDA NMS takes float32 boxes only, so mmdet's heads fail with half weights) and the run goes on.
    ``on_result(results)`` is called after each model (to save partial results)."""
    results = OrderedDict()
    for name in names:
        entry = MODEL_ZOO[name]
        log(f'{name}: {entry}')
        try:
            results[name] = measure(entry, device, height, width, batch, warmup, repeats, nms_input, train, flops,
                                    precision, log)
        except Exception as err:  # noqa: BLE001  (a benchmark row, not a library path: report and go on)
            results[name] = dict(config=entry, precision=precision, error=f'{type(err).__name__}: {err}'[:500])
            log(f'  FAILED: {results[name]["error"]}')
        if device.startswith('cuda'):
            torch.cuda.empty_cache()
        if on_result is not None:
            on_result(results)
    return results


def _ms(value: float) -> str:
    return f'{value:.1f}' if value < 100 else f'{value:.0f}'


def markdown(results: Dict[str, dict], batch: int) -> str:
    """Tables with ratios to Mask R-CNN R-50 (when measured) per regime."""
    failed = {name: row['error'] for name, row in results.items() if 'error' in row}
    results = OrderedDict((name, row) for name, row in results.items() if 'error' not in row)
    base = results.get(BASELINE)
    lines = []
    for regime in ('trained', 'worst'):
        lines += [f'\n**{regime}-like regime**\n' if regime == 'trained' else '\n**worst case** (score thresholds 0)\n',
                  f'| model | ms (batch 1) | ratio | ms/img (batch {batch}) | img/s (batch {batch}) | backbone+neck ms | '
                  'heads+post ms | detections | peak mem MB |', '|---|---|---|---|---|---|---|---|---|']
        for name, row in results.items():
            r = row[regime]
            ratio = f'{r["batch1"]["median_ms"] / base[regime]["batch1"]["median_ms"]:.2f}' if base else 'n/a'
            lines.append(f'| {name} | {_ms(r["batch1"]["median_ms"])} ({_ms(r["batch1"]["min_ms"])}-'
                         f'{_ms(r["batch1"]["max_ms"])}) | {ratio} | {_ms(r["batch_n_ms_per_image"])} | '
                         f'{1000 / r["batch_n_ms_per_image"]:.1f} | '
                         f'{_ms(r["backbone_neck_ms"])} | {_ms(r["heads_postprocess_ms"])} | {r["detections"]} | '
                         f'{r["peak_mem_mb"]:.0f} |')
    lines += ['\n**size, operators, training**\n',
              '| model | params (M) | GFLOPs | aten calls / predict | sync-like ops / predict | train step ms | '
              'train ratio |', '|---|---|---|---|---|---|---|']
    for name, row in results.items():
        train = row.get('train_step_ms')
        ratio = f'{train / base["train_step_ms"]:.2f}' if base and train and base.get('train_step_ms') else 'n/a'
        gflops = f'{row["gflops"]:.0f}' if row['gflops'] is not None else 'n/a'
        lines.append(f'| {name} | {row["params_m"]:.1f} | {gflops} | {row["aten_calls"]} | {row["host_syncs"]} | '
                     f'{_ms(train)} | {ratio} |' if train else
                     f'| {name} | {row["params_m"]:.1f} | {gflops} | {row["aten_calls"]} | {row["host_syncs"]} | '
                     f'n/a | n/a |')
    if failed:
        lines += ['\n**failed**\n'] + [f'- {name}: {error}' for name, error in failed.items()]
    return '\n'.join(lines) + '\n'
