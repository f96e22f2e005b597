"""The generic timing pieces of ``centermask_mm/utils/benchmark.py``."""
import pytest

from centermask_mm.utils.benchmark import ratios_to_baseline, time_round_robin


def test_round_robin_interleaves_the_calls_and_drops_a_failing_one():
    order, errors = [], []

    def call(name, fail_at=None):
        def fn():
            order.append(name)
            if fail_at is not None and order.count(name) == fail_at:
                raise RuntimeError(f'{name} broke')
        return fn

    calls = dict(a=call('a'), b=call('b', fail_at=3), c=call('c'))
    times = time_round_robin(calls, 'cpu', warmup=1, repeats=3, on_error=lambda name, err: errors.append((name, err)))
    # warm-up round, then timed rounds of one call each; b fails in the second timed round and leaves the rotation
    assert order == ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c', 'a', 'c']
    assert list(times) == ['a', 'c'] and all(len(t) == 3 and min(t) >= 0 for t in times.values())
    assert [name for name, _ in errors] == ['b'] and str(errors[0][1]) == 'b broke'


def test_ratios_are_taken_round_by_round():
    ratios = ratios_to_baseline([2.0, 6.0, 3.0], [4.0, 10.0, 3.0])
    assert ratios['per_round'] == pytest.approx([0.5, 0.6, 1.0])
    assert (ratios['median'], ratios['min'], ratios['max']) == pytest.approx((0.6, 0.5, 1.0))
