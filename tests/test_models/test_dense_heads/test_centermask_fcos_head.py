import math

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict


def build_head():
    return MODELS.build(dict(
        type='CenterMaskFCOSHead', num_classes=2, in_channels=1, feat_channels=1, stacked_convs=1, strides=[8],
        regress_ranges=((-1, 1e8), ), norm_cfg=None, norm_on_bbox=True, centerness_on_reg=True))


def logit(p):
    return math.log(p / (1 - p))


# three locations on a 1x3 map (centres x = 4, 12, 20; y = 4), class 0
CLS = [0.9, 0.6, 0.3]
CTR = [0.1, 0.9, 0.9]   # cls*ctr = 0.09, 0.54, 0.27: the order differs from cls alone


def head_outputs(distance):
    cls_score = torch.full((1, 2, 1, 3), -20.0)
    cls_score[0, 0, 0] = torch.tensor([logit(p) for p in CLS])
    centerness = torch.tensor([logit(p) for p in CTR]).view(1, 1, 1, 3)
    bbox_pred = torch.full((1, 4, 1, 3), distance)
    return [cls_score], [bbox_pred], [centerness]


def decode_cfg(**kwargs):
    cfg = dict(nms_pre=2, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6), max_per_img=50,
               min_bbox_size=0, score_sqrt=True, clip_bbox=False)
    cfg.update(kwargs)
    return ConfigDict(cfg)


META = dict(img_shape=(8, 24), scale_factor=(1.0, 1.0))


def test_topk_on_cls_times_ctr_and_sqrt_score():
    head = build_head().eval()
    result = head.predict_by_feat(*head_outputs(2.0), batch_img_metas=[META], cfg=decode_cfg())[0]
    # mmdet would keep the two best by cls (x=4 and x=12); the reference keeps the two best by cls*ctr
    assert result.bboxes[:, 0].add(2).tolist() == [12.0, 20.0]
    assert result.scores.tolist() == pytest.approx([math.sqrt(0.54), math.sqrt(0.27)], rel=1e-5)
    assert result.labels.tolist() == [0, 0]


def test_score_switch_and_threshold_on_cls_only():
    head = build_head().eval()
    result = head.predict_by_feat(*head_outputs(2.0), batch_img_metas=[META],
                                  cfg=decode_cfg(nms_pre=1000, score_sqrt=False, score_thr=0.5))[0]
    # cls > 0.5 keeps x=4 (0.9) and x=12 (0.6) even though cls*ctr of x=4 is only 0.09
    assert sorted(result.scores.tolist()) == pytest.approx([0.09, 0.54], rel=1e-5)


def test_boxes_not_clipped_unless_asked():
    head = build_head().eval()
    unclipped = head.predict_by_feat(*head_outputs(6.0), batch_img_metas=[META], cfg=decode_cfg())[0]
    assert unclipped.bboxes.min() < 0 and unclipped.bboxes[:, 2].max() > 24
    clipped = head.predict_by_feat(*head_outputs(6.0), batch_img_metas=[META], cfg=decode_cfg(clip_bbox=True))[0]
    assert clipped.bboxes.min() >= 0 and clipped.bboxes[:, 2].max() <= 24


def test_training_mode_decodes_in_stride_units():
    head = build_head()
    head.eval()
    eval_boxes = head.predict_by_feat(*head_outputs(2.0), batch_img_metas=[META], cfg=decode_cfg())[0].bboxes
    head.train()
    train_boxes = head.predict_by_feat(*head_outputs(2.0 / 8), batch_img_metas=[META], cfg=decode_cfg())[0].bboxes
    assert torch.allclose(eval_boxes, train_boxes)


def test_training_mode_scales_each_level_by_its_own_stride():
    """ref §3.2: regression in units of the level stride, multiplied by that level's stride when decoding."""
    head, cls, reg, ctr, _ = multi_level_head_and_outputs(1)
    cfg = decode_cfg(nms_pre=30, score_thr=0.3)
    meta = [dict(img_shape=(96, 128))]
    eval_boxes = head.predict_by_feat(cls, reg, ctr, batch_img_metas=meta, cfg=cfg, with_nms=False)[0].bboxes
    head.train()
    in_strides = [r / s for r, s in zip(reg, (8, 16, 32))]
    train_boxes = head.predict_by_feat(cls, in_strides, ctr, batch_img_metas=meta, cfg=cfg, with_nms=False)[0].bboxes
    assert len(eval_boxes) > 30  # candidates from more than one level
    torch.testing.assert_close(train_boxes, eval_boxes, rtol=0, atol=1e-4)


def test_defaults_decode_like_centermask2():
    """Without score_thr / score_sqrt / clip_bbox / nms_pre / min_bbox_size in the cfg the head decodes as ref §3.3
    (threshold 0.05 on cls, score sqrt(cls * ctr), boxes unclipped, every candidate of the level)."""
    head = build_head().eval()
    probs, ctrs = [0.9, 0.6, 0.3, 0.06, 0.04], [0.1, 0.9, 0.9, 0.9, 0.9]
    cls_score = torch.full((1, 2, 1, 5), -20.0)
    cls_score[0, 0, 0] = torch.tensor([logit(p) for p in probs])
    centerness = torch.tensor([logit(p) for p in ctrs]).view(1, 1, 1, 5)
    cfg = ConfigDict(nms=dict(type='nms', iou_threshold=0.6), max_per_img=50)
    result = head.predict_by_feat([cls_score], [torch.full((1, 4, 1, 5), 6.0)], [centerness],
                                  batch_img_metas=[dict(img_shape=(8, 40))], cfg=cfg)[0]
    # locations x = 4, 12, 20, 28 (0.04 is below the threshold); boxes 12 px wide overlap by IoU 0.2 only
    order = [1, 2, 0, 3]
    assert result.scores.tolist() == pytest.approx([math.sqrt(probs[i] * ctrs[i]) for i in order], rel=1e-5)
    assert result.bboxes.tolist() == [[8 * i + 4 - 6, -2.0, 8 * i + 4 + 6, 10.0] for i in order]
    assert result.labels.tolist() == [0] * 4


def nms_outputs():
    """One level of 4 locations (x = 4, 12, 20, 28; stride 8), centerness 1: at x = 4 class 0 (0.9) and class 1
    (0.8) on the box [0, 0, 40, 8]; class 0 at x = 12 (0.7) on the same box, at x = 20 (0.6) on [8.5, 0, 48.5, 8]
    (IoU 0.65 with it) and at x = 28 (0.5) on [12, 0, 52, 8] (IoU 0.54 with it, 0.84 with the previous one)."""
    cls_score = torch.full((1, 2, 1, 4), -20.0)
    cls_score[0, 0, 0] = torch.tensor([logit(p) for p in (0.9, 0.7, 0.6, 0.5)])
    cls_score[0, 1, 0, 0] = logit(0.8)
    ltrb = torch.tensor([[4., 4., 36., 4.], [12., 4., 28., 4.], [11.5, 4., 28.5, 4.], [16., 4., 24., 4.]])
    return [cls_score], [ltrb.t().reshape(1, 4, 1, 4)], [torch.full((1, 1, 1, 4), 20.0)]


@pytest.mark.parametrize('path', ['eager', 'rescale', 'traced'])
@pytest.mark.parametrize('iou_threshold, expected', [
    (0.6, [([0., 0., 40., 8.], 0, 0.9), ([0., 0., 40., 8.], 1, 0.8), ([12., 0., 52., 8.], 0, 0.5)]),
    (0.7, [([0., 0., 40., 8.], 0, 0.9), ([0., 0., 40., 8.], 1, 0.8), ([8.5, 0., 48.5, 8.], 0, 0.6)]),
])
def test_nms_is_class_aware_at_the_configured_iou(monkeypatch, path, iou_threshold, expected):
    """ref §3.3: class-aware NMS (a box of another class is never suppressed) suppressing IoU > threshold, on the
    eager path, mmdet's ``_bbox_post_process`` (rescale) and the traced form (ONNX export)."""
    from centermask_mm.models.utils import tracing
    head = build_head().eval()
    if path == 'traced':
        monkeypatch.setattr(tracing, 'is_tracing', lambda: True)
    cfg = decode_cfg(nms_pre=1000, nms=dict(type='nms', iou_threshold=iou_threshold))
    meta = dict(img_shape=(8, 32), scale_factor=(1.0, 1.0))
    result = head.predict_by_feat(*nms_outputs(), batch_img_metas=[meta], cfg=cfg, rescale=path == 'rescale')[0]
    assert result.bboxes.tolist() == [box for box, _, _ in expected]
    assert result.labels.tolist() == [label for _, label, _ in expected]
    assert result.scores.tolist() == pytest.approx([math.sqrt(p) for _, _, p in expected], rel=1e-5)


def per_level_reference(head, cls_scores, bbox_preds, centernesses, priors, nms_pre, score_thr):
    """The reference's selection written level by level (ref §3.3): candidates cls > thr, the best nms_pre by
    cls*ctr per level, score sqrt(cls*ctr), box from the location and its (l, t, r, b)."""
    rows = []
    for cls, reg, ctr, pts in zip(cls_scores, bbox_preds, centernesses, priors):
        cls = cls.permute(1, 2, 0).reshape(-1, head.cls_out_channels).sigmoid()
        ctr = ctr.permute(1, 2, 0).reshape(-1).sigmoid()
        reg = reg.permute(1, 2, 0).reshape(-1, 4)
        loc, label = (cls > score_thr).nonzero(as_tuple=True)
        score = cls[loc, label] * ctr[loc]
        if score.numel() > nms_pre:
            score, top = score.topk(nms_pre)
            loc, label = loc[top], label[top]
        box = torch.stack([pts[loc, 0] - reg[loc, 0], pts[loc, 1] - reg[loc, 1], pts[loc, 0] + reg[loc, 2],
                           pts[loc, 1] + reg[loc, 3]], dim=1)
        rows += [(s, int(lbl), tuple(b)) for s, lbl, b in zip(score.sqrt().tolist(), label.tolist(), box.tolist())]
    return sorted(rows)


@pytest.mark.parametrize('score_thr, nms_pre', [(0.0, 50), (0.3, 40), (0.6, 1000)])
def test_vectorised_selection_equals_the_per_level_algorithm(score_thr, nms_pre):
    head = MODELS.build(dict(type='CenterMaskFCOSHead', num_classes=5, in_channels=4, feat_channels=4,
                             stacked_convs=1, strides=[8, 16, 32], regress_ranges=((-1, 64), (64, 128), (128, 1e8)),
                             norm_cfg=None, norm_on_bbox=True, centerness_on_reg=True)).eval()
    gen = torch.Generator().manual_seed(1)
    sizes = [(12, 16), (6, 8), (3, 4)]
    cls = [torch.randn(5, h, w, generator=gen) for h, w in sizes]
    reg = [torch.rand(4, h, w, generator=gen) * 40 for h, w in sizes]
    ctr = [torch.randn(1, h, w, generator=gen) for h, w in sizes]
    priors = head.prior_generator.grid_priors(sizes, dtype=torch.float, device='cpu')
    cfg = decode_cfg(nms_pre=nms_pre, score_thr=score_thr)
    ours = head._predict_by_feat_single(cls, reg, ctr, priors, dict(img_shape=(96, 128)), cfg, with_nms=False)
    rows = sorted(zip(ours.scores.tolist(), ours.labels.tolist(), map(tuple, ours.bboxes.tolist())))
    expected = per_level_reference(head, cls, reg, ctr, priors, nms_pre, score_thr)
    assert len(rows) == len(expected) > 0
    for (s, lbl, box), (es, elbl, ebox) in zip(rows, expected):
        assert lbl == elbl and s == pytest.approx(es, abs=1e-7) and box == pytest.approx(ebox, abs=1e-5)


def test_head_uses_the_cached_points():
    head = build_head()
    from centermask_mm.models.task_modules.prior_generators import CachedMlvlPointGenerator
    assert isinstance(head.prior_generator, CachedMlvlPointGenerator)
    assert head.prior_generator.strides == [(s, s) for s in head.strides]


def multi_level_head_and_outputs(num_images, seed=1):
    head = MODELS.build(dict(type='CenterMaskFCOSHead', num_classes=5, in_channels=4, feat_channels=4,
                             stacked_convs=1, strides=[8, 16, 32], regress_ranges=((-1, 64), (64, 128), (128, 1e8)),
                             norm_cfg=None, norm_on_bbox=True, centerness_on_reg=True)).eval()
    gen = torch.Generator().manual_seed(seed)
    sizes = [(12, 16), (6, 8), (3, 4)]
    cls = [torch.randn(num_images, 5, h, w, generator=gen) for h, w in sizes]
    reg = [torch.rand(num_images, 4, h, w, generator=gen) * 40 for h, w in sizes]
    ctr = [torch.randn(num_images, 1, h, w, generator=gen) for h, w in sizes]
    priors = head.prior_generator.grid_priors(sizes, dtype=torch.float, device='cpu')
    return head, cls, reg, ctr, priors


@pytest.mark.parametrize('clip_bbox', [False, True])
def test_batch_decoding_equals_the_per_level_algorithm_image_by_image(clip_bbox):
    """All images of a batch are decoded at once: each image's candidates are those of the reference written level
    by level for that image alone, and boxes are clipped to each image's own ``img_shape`` when asked."""
    head, cls, reg, ctr, priors = multi_level_head_and_outputs(3)
    metas = [dict(img_shape=(96, 128)), dict(img_shape=(40, 100)), dict(img_shape=(90, 60))]
    cfg = decode_cfg(nms_pre=30, score_thr=0.3, clip_bbox=clip_bbox, min_bbox_size=-1)  # keep clipped-away boxes
    results = head.predict_by_feat(cls, reg, ctr, batch_img_metas=metas, cfg=cfg, with_nms=False)
    assert len(results) == 3
    for i, (ours, meta) in enumerate(zip(results, metas)):
        expected = per_level_reference(head, [c[i] for c in cls], [r[i] for r in reg], [c[i] for c in ctr], priors,
                                       30, 0.3)
        if clip_bbox:
            h, w = meta['img_shape']
            expected = sorted((s, lbl, (min(max(b[0], 0), w), min(max(b[1], 0), h), min(max(b[2], 0), w),
                                        min(max(b[3], 0), h))) for s, lbl, b in expected)
        rows = sorted(zip(ours.scores.tolist(), ours.labels.tolist(), map(tuple, ours.bboxes.tolist())))
        assert len(rows) == len(expected) > 0
        for (s, lbl, box), (es, elbl, ebox) in zip(rows, expected):
            assert lbl == elbl and s == pytest.approx(es, abs=1e-7) and box == pytest.approx(ebox, abs=1e-5)


@pytest.mark.parametrize('rescale', [False, True])
def test_batch_decoding_with_nms_equals_decoding_each_image_alone(rescale):
    head, cls, reg, ctr, _ = multi_level_head_and_outputs(4, seed=3)
    for level in cls:
        level[1] = -20.0  # an image without any candidate among images with some
    metas = [dict(img_shape=(96, 128), scale_factor=(s, s * 1.1)) for s in (1.0, 2.0, 0.5, 1.5)]
    cfg = decode_cfg(nms_pre=40, score_thr=0.2, max_per_img=7, min_bbox_size=10)
    batch = head.predict_by_feat(cls, reg, ctr, batch_img_metas=metas, cfg=cfg, rescale=rescale)
    for i, ours in enumerate(batch):
        alone = head.predict_by_feat([c[i:i + 1] for c in cls], [r[i:i + 1] for r in reg],
                                     [c[i:i + 1] for c in ctr], batch_img_metas=metas[i:i + 1], cfg=cfg,
                                     rescale=rescale)[0]
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(getattr(ours, key), getattr(alone, key)), (i, key)
    assert [len(r) for r in batch][1] == 0 and all(0 < len(r) <= 7 for i, r in enumerate(batch) if i != 1)


def test_decoding_in_training_is_detached():
    head, cls, reg, ctr, _ = multi_level_head_and_outputs(2)
    head.train()
    inputs = [t.requires_grad_() for t in cls + reg + ctr]
    results = head.predict_by_feat(cls, reg, ctr, batch_img_metas=[dict(img_shape=(96, 128))] * 2,
                                   cfg=decode_cfg(nms_pre=30, score_thr=0.3))
    assert all(t.requires_grad for t in inputs) and sum(len(r) for r in results) > 0
    assert not any(r.bboxes.requires_grad or r.scores.requires_grad for r in results)


@pytest.mark.parametrize('traced', [False, True])
@pytest.mark.parametrize('min_bbox_size, clip_bbox', [(-1, False), (0, True), (25, False), (25, True)])
def test_size_filter_and_nms_equal_mmdet_bbox_post_process(monkeypatch, min_bbox_size, clip_bbox, traced):
    """The size filter (done on the whole batch before the selection, or in the traced form of the ONNX export)
    and the NMS step give exactly mmdet's ``_bbox_post_process`` applied to the unfiltered candidates of each
    image."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead

    from centermask_mm.models.utils import tracing
    head, cls, reg, ctr, _ = multi_level_head_and_outputs(3, seed=5)
    metas = [dict(img_shape=(96, 128)), dict(img_shape=(50, 70)), dict(img_shape=(90, 128))]
    cfg = decode_cfg(nms_pre=40, score_thr=0.1, max_per_img=9, min_bbox_size=min_bbox_size, clip_bbox=clip_bbox)
    with monkeypatch.context() as patch:
        if traced:
            patch.setattr(tracing, 'is_tracing', lambda: True)
        got = head.predict_by_feat(cls, reg, ctr, batch_img_metas=metas, cfg=cfg)
    unfiltered = head.predict_by_feat(cls, reg, ctr, batch_img_metas=metas, cfg=ConfigDict(cfg, min_bbox_size=-1),
                                      with_nms=False)
    filtered = 0
    for ours, candidates, meta in zip(got, unfiltered, metas):
        if min_bbox_size >= 0:
            wh = candidates.bboxes[:, 2:] - candidates.bboxes[:, :2]
            filtered += int((wh <= min_bbox_size).any(1).sum())
        expected = BaseDenseHead._bbox_post_process(head, candidates, cfg, rescale=False, with_nms=True,
                                                    img_meta=meta)
        assert 0 < len(ours) <= 9
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(getattr(ours, key), getattr(expected, key)), key
    assert filtered > 0 or min_bbox_size < 0  # the filter had something to do


def tied_outputs(probs):
    """One level of ``len(probs)`` locations in a row (stride 8), class 0 with ``probs``, centerness 1 (logit 20),
    boxes 4 px wide around each location: no two overlap, so NMS keeps every candidate."""
    num = len(probs)
    cls_score = torch.full((1, 2, 1, num), -20.0)
    cls_score[0, 0, 0] = torch.tensor([logit(p) for p in probs])
    return [cls_score], [torch.full((1, 4, 1, num), 2.0)], [torch.full((1, 1, 1, num), 20.0)]


def reference_cap(scores, max_per_img):
    """centermask2 / the paper code after NMS: keep ``scores >= kthvalue(scores, n - k + 1)`` when n > k."""
    n = scores.numel()
    if n <= max_per_img:
        return torch.ones(n, dtype=torch.bool)
    threshold, _ = torch.kthvalue(scores, n - max_per_img + 1)
    return scores >= threshold.item()


@pytest.mark.parametrize('probs', [
    [0.8] * 60,  # every score ties: all 60 kept
    [0.9 - 0.005 * i for i in range(48)] + [0.6] * 6 + [0.5 - 0.01 * i for i in range(10)],  # 6 tie at rank 49-54
    [0.9 - 0.005 * i for i in range(64)],  # no tie: exactly 50
])
def test_cap_keeps_the_scores_that_tie_the_last_kept_one(probs):
    head = build_head().eval()
    meta = dict(img_shape=(8, 8 * len(probs)), scale_factor=(1.0, 1.0))
    outputs = tied_outputs(probs)
    survivors = head.predict_by_feat(*outputs, batch_img_metas=[meta],
                                     cfg=decode_cfg(nms_pre=1000, max_per_img=-1))[0]
    assert len(survivors) == len(probs)  # NMS kept every box
    expected = survivors[reference_cap(survivors.scores, 50)]
    got = head.predict_by_feat(*outputs, batch_img_metas=[meta], cfg=decode_cfg(nms_pre=1000, max_per_img=50))[0]
    assert len(got) == len(expected) and len(got) >= 50
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(getattr(got, key), getattr(expected, key)), key
    # mmdet's cap (keep_score_ties=False): exactly 50, the first 50 survivors
    exact = head.predict_by_feat(*outputs, batch_img_metas=[meta],
                                 cfg=decode_cfg(nms_pre=1000, max_per_img=50, keep_score_ties=False))[0]
    assert torch.equal(exact.bboxes, survivors.bboxes[:50])
    # the same cap on mmdet's path (rescale=True runs _bbox_post_process)
    rescaled = head.predict_by_feat(*outputs, batch_img_metas=[meta], rescale=True,
                                    cfg=decode_cfg(nms_pre=1000, max_per_img=50))[0]
    assert torch.equal(rescaled.scores, expected.scores)


def test_cap_in_the_traced_form_equals_the_eager_one(monkeypatch):
    """While tracing (ONNX export) the cap is a mask computed from the scores padded with -inf."""
    from centermask_mm.models.dense_heads import centermask_fcos_head as module
    from centermask_mm.models.utils import tracing
    scores = torch.tensor([0.9, 0.8, 0.7, 0.7, 0.7, 0.6])
    for k in (1, 2, 3, 5, 6, 9):
        eager = scores[module.cap_detections(scores, k, True)]
        assert torch.equal(eager, scores[reference_cap(scores, k)]), k
        monkeypatch.setattr(tracing, 'is_tracing', lambda: True)
        traced = scores[module.cap_detections(scores, k, True)]
        monkeypatch.setattr(tracing, 'is_tracing', lambda: False)
        assert torch.equal(traced, eager), k
