"""Device-agnostic timing: inference speed on CPU or CUDA through mmdet's benchmark (which is CUDA-only), and the
generic pieces of side-by-side timing (round-robin rounds, per-round ratios to a baseline, peak memory of a call)."""
import statistics
import threading
import time
from collections import OrderedDict
from typing import Callable, Dict, List

import psutil
import torch
from mmcv.cnn import fuse_conv_bn
from mmdet.registry import MODELS
from mmdet.utils.benchmark import InferenceBenchmark, print_process_memory
from mmengine.logging import print_log
from mmengine.runner import load_checkpoint


class DeviceInferenceBenchmark(InferenceBenchmark):
    """mmdet's :class:`InferenceBenchmark` (same data loading, warm-up, logging and averaging over repeats) on
    any device: mmdet's moves the model with ``.cuda()`` and calls ``torch.cuda.synchronize()`` unconditionally.
    Times ``model.test_step`` (preprocessing, prediction, mask pasting) per image, batch size 1.
    """

    device = 'cuda' if torch.cuda.is_available() else 'cpu'

    def _init_model(self, checkpoint, is_fuse_conv_bn):
        model = MODELS.build(self.cfg.model)
        if checkpoint:
            load_checkpoint(model, checkpoint, map_location='cpu')
        if is_fuse_conv_bn:
            model = fuse_conv_bn(model)
        return model.to(self.device).eval()

    def _sync(self):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()

    def run_once(self) -> dict:
        elapsed_total, timed = 0.0, 0
        for i, data in enumerate(self.data_loader):
            self._sync()
            start = time.perf_counter()
            with torch.no_grad():
                self.model.test_step(data)
            self._sync()
            if i >= self.num_warmup:
                elapsed_total += time.perf_counter() - start
                timed += 1
                if (i + 1) % self.log_interval == 0:
                    print_log(f'Done image [{i + 1:<3}/{self.max_iter}], fps: {timed / elapsed_total:.1f} img/s, '
                              f'times per image: {1000 * elapsed_total / timed:.1f} ms/img ({self.device})',
                              self.logger)
            if i + 1 == self.max_iter:
                break
        if timed == 0:
            raise RuntimeError(f'benchmark timed no image: the test set has fewer than num_warmup + 1 = '
                               f'{self.num_warmup + 1} images; lower --num-warmup')
        return {'fps': timed / elapsed_total}

    def average_multiple_runs(self, results):
        fps = [round(r['fps'], 2) for r in results]
        avg = sum(fps) / len(fps)
        print_log(f'Overall fps: {fps}[{avg:.2f}] img/s, times per image: {1000 / avg:.1f} ms/img '
                  f'({self.device})', self.logger)
        print_process_memory(self._process, self.logger)
        return {'avg_fps': avg, 'fps_list': fps}


def synchronize(device: str):
    """Wait for ``device``'s queued work (CUDA); a no-op on the CPU."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def summarize_ms(times: List[float]) -> Dict[str, float]:
    """Median, min and max of ``times`` (ms)."""
    return dict(median_ms=statistics.median(times), min_ms=min(times), max_ms=max(times))


def time_calls(fn, device: str, warmup: int, repeats: int) -> Dict[str, float]:
    """Median, min and max ms of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(1000 * (time.perf_counter() - start))
    return summarize_ms(times)


def time_round_robin(calls: Dict[str, Callable[[], object]], device: str, warmup: int, repeats: int,
                     on_error: Callable[[str, Exception], None]) -> Dict[str, List[float]]:
    """ms of each call of ``calls`` in ``repeats`` rounds, a round being one timed call of every function in turn,
    after ``warmup`` untimed rounds. Interleaving spreads the drift of a shared machine over all the functions of a
    round instead of onto whichever was measured in the slow minute. A function that raises is reported to
    ``on_error(name, error)`` and leaves the rotation; the others go on. Returns the functions that completed every
    round, with their times in round order."""
    times = OrderedDict((name, []) for name in calls)
    active = list(calls)

    def call(name, timed):
        try:
            synchronize(device)
            start = time.perf_counter()
            calls[name]()
            synchronize(device)
            if timed:
                times[name].append(1000 * (time.perf_counter() - start))
        except Exception as err:  # noqa: BLE001  (a benchmark row: report it and keep timing the others)
            active.remove(name)
            on_error(name, err)

    for rounds, timed in ((warmup, False), (repeats, True)):
        for _ in range(rounds):
            for name in list(active):
                call(name, timed)
    return OrderedDict((name, times[name]) for name in active)


def ratios_to_baseline(times: List[float], baseline_times: List[float]) -> Dict[str, object]:
    """Per-round ratios of ``times`` to ``baseline_times`` (taken in the same rounds), with their median and range."""
    per_round = [t / b for t, b in zip(times, baseline_times)]
    return dict(median=statistics.median(per_round), min=min(per_round), max=max(per_round), per_round=per_round)


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


def peak_memory_call(fn, model: torch.nn.Module, device: str):
    """One untimed call of ``fn``: ``(its output, peak memory in MB)``. On CPU the resident-set growth above the
    level at the call (:class:`PeakRSS`); on CUDA ``model``'s parameters and buffers plus the allocator's peak above
    what was allocated before the call (other models built in the same process do not count)."""
    if device.startswith('cuda'):
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = fn()
        synchronize(device)
        weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
        return out, (torch.cuda.max_memory_allocated() - before + weights) / 2**20
    with PeakRSS() as mem:
        out = fn()
    return out, mem.peak / 2**20
