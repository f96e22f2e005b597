"""CPU latency of an exported CenterMask in ONNX Runtime vs the PyTorch model, on the same pre-processed input.

    python tools/deployment/benchmark_onnx.py CONFIG CHECKPOINT MODEL.onnx [--image IMG | --shape H W]
        [--repeats 20] [--warmup 3] [--threads 2]

Both sides are timed from the network input to the finished detections (boxes clipped, masks pasted at the
original size): PyTorch ``model.predict`` vs ONNX Runtime graph + ``postprocess_outputs``; the graph alone is
reported too. Same thread count for both (torch.set_num_threads and ORT intra_op_num_threads). Median, min and
max in ms over --repeats rounds after --warmup; each round runs each variant once (interleaved).
"""
import argparse
import statistics
import time

import numpy as np
import torch
from mmdet.apis import init_detector
from mmdet.utils import register_all_modules

import centermask_mm  # noqa: F401
from centermask_mm.deployment import ORTCenterMask


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for random weights")
    parser.add_argument('onnx')
    parser.add_argument('--image', help='image to run on (default: a random image of --shape)')
    parser.add_argument('--shape', type=int, nargs=2, default=(320, 320), metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    return parser.parse_args(argv)


def timed(fns, repeats, warmup):
    """Median, min and max ms of each of ``fns`` (name -> callable), the runs interleaved (one of each per round)
    so that a change of machine load hits them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    torch.set_num_threads(args.threads)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model = init_detector(args.config, checkpoint, device='cpu')
    runner = ORTCenterMask(args.onnx, model.cfg, num_threads=args.threads)
    image = args.image
    if image is None:
        image = np.random.RandomState(0).randint(0, 256, (*args.shape, 3), dtype=np.uint8)
    inputs, sample = runner.preprocess(image)
    img_shape = sample.metainfo['img_shape']

    def run_torch():
        with torch.no_grad():
            return model.predict(inputs, [sample.clone()])[0]

    results = timed({
        'PyTorch (model.predict)': run_torch,
        'ONNX Runtime (graph + postprocess_outputs)': lambda: runner.predict(inputs, sample.clone()),
        'ONNX Runtime (graph only)': lambda: runner.forward(inputs, img_shape),
    }, args.repeats, args.warmup)
    detections = len(run_torch().pred_instances)
    print(f'input {tuple(inputs.shape)} (img_shape {img_shape[:2]}), {detections} detections, '
          f'{args.threads} threads, {args.repeats} runs after {args.warmup} warm-up')
    print('| runtime | median ms | min ms | max ms |\n|---|---|---|---|')
    for name, (median, low, high) in results.items():
        print(f'| {name} | {median:.1f} | {low:.1f} | {high:.1f} |')


if __name__ == '__main__':
    main()
