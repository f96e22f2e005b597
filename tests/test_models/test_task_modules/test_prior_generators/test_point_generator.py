import torch
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.registry import TASK_UTILS
from torch.profiler import ProfilerActivity, profile

from centermask_mm.models.task_modules.prior_generators import CachedMlvlPointGenerator
from centermask_mm.models.utils import tracing


def test_cached_points_equal_mmdet_points_and_are_generated_once_per_size():
    strides = [8, 16, 32, 64, 128]
    cached, plain = CachedMlvlPointGenerator(strides), MlvlPointGenerator(strides)
    sizes_a = [torch.Size((100, 152)), torch.Size((50, 76)), torch.Size((25, 38)), torch.Size((13, 19)),
               torch.Size((7, 10))]
    sizes_b = [(s[0] // 2 + 1, s[1] // 2 + 1) for s in sizes_a]
    for sizes in (sizes_a, sizes_b, sizes_a):
        for got, expected in zip(cached.grid_priors(sizes, device='cpu'), plain.grid_priors(sizes, device='cpu')):
            assert torch.equal(got, expected)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        cached.grid_priors(sizes_a, device='cpu')
    assert not [e for e in prof.events() if e.name.startswith('aten::')]  # no operator: from the cache
    for n in range(CachedMlvlPointGenerator.max_cached + 3):
        cached.grid_priors([(n + 1, n + 2)] * len(strides), device='cpu')
    assert len(cached._cache) == CachedMlvlPointGenerator.max_cached


def test_points_are_not_cached_while_tracing(monkeypatch):
    cached, plain = CachedMlvlPointGenerator([8, 16]), MlvlPointGenerator([8, 16])
    monkeypatch.setattr(tracing, 'is_tracing', lambda: True)
    sizes = [(6, 8), (3, 4)]
    for got, expected in zip(cached.grid_priors(sizes, device='cpu'), plain.grid_priors(sizes, device='cpu')):
        assert torch.equal(got, expected)
    assert not cached._cache


def test_registered_in_task_utils():
    generator = TASK_UTILS.build(dict(type='CachedMlvlPointGenerator', strides=[8, 16], offset=0.5))
    assert isinstance(generator, CachedMlvlPointGenerator) and generator.offset == 0.5
