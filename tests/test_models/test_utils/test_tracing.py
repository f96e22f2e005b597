"""The traceable forms compute what the PyTorch forms compute (same values, in PyTorch)."""
import pytest
import torch
from mmcv.ops import batched_nms

from centermask_mm.models.utils import tracing
from centermask_mm.models.utils.tracing import batched_nms_traceable, topk_count


def random_boxes(n, size=100.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g), torch.randint(0, 3, (n, ), generator=g)


def test_is_tracing_follows_torch_jit():
    seen = []
    torch.jit.trace(lambda x: seen.append(tracing.is_tracing()) or x + 1, torch.zeros(1), check_trace=False)
    assert seen == [True] and not tracing.is_tracing()


def test_traceable_batched_nms_equals_mmcv():
    boxes, scores, labels = random_boxes(400)
    cfg = dict(type='nms', iou_threshold=0.6)
    dets, keep = batched_nms(boxes, scores, labels, cfg)
    dets_t, keep_t = batched_nms_traceable(boxes, scores, labels, cfg)
    assert 0 < len(keep) < 400
    assert torch.equal(keep, keep_t) and torch.equal(dets, dets_t)
    empty_dets, empty_keep = batched_nms_traceable(boxes[:0], scores[:0], labels[:0], cfg)  # mmcv's raises
    assert empty_dets.shape == (0, 5) and empty_keep.numel() == 0
    with pytest.raises(NotImplementedError):
        batched_nms_traceable(boxes, scores, labels, dict(type='soft_nms', iou_threshold=0.6))


def test_topk_count_while_tracing_is_a_tensor_of_the_same_value(monkeypatch):
    scores = torch.rand(700)
    assert topk_count(scores, 1000) == 700 and topk_count(scores, 500) == 500 and topk_count(scores, -1) == 700
    monkeypatch.setattr(tracing, 'is_tracing', lambda: True)
    for nms_pre, expected in ((1000, 700), (500, 500), (-1, 700)):
        count = topk_count(scores, nms_pre)
        assert isinstance(count, torch.Tensor) and int(count) == expected
