"""Inference speed on CPU or CUDA through mmdet's benchmark (which is CUDA-only)."""
import time

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
