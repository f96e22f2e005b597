"""What mmcv's RoIAlign (14x14, sampling_ratio 0, aligned=True: CenterMask's mask pooler) costs for boxes far larger
than the image, on the CPU: the numbers behind the limit of ``CenterMaskRoIHead.pooling_rois`` (RoI corners kept
within one image size of each border).

    python tools/analysis_tools/roi_align_far_boxes.py [--image 800 1216] [--multiples 1 3 10 30 100]

For each multiple m, one box of m times the image's width and height, centred on the image, is pooled from a
stride-8 level (P3: at inference every level pools every RoI) with 256 channels, in a fresh process; printed are the
wall time and the peak resident memory of that process, and whether it failed. mmcv's CPU kernel allocates a
sampling grid of ``ceil(h / 14) * ceil(w / 14) * 196`` entries (32 bytes each) per RoI, in feature-map pixels, so
memory grows with the box area; its CUDA kernel loops over the same grid without allocating it (slower, no memory).
"""
import argparse
import json
import subprocess
import sys

CHILD = r'''
import json, resource, sys, time
import torch
from mmcv.ops import RoIAlign
h, w, m = map(float, sys.argv[1:4])
feat = torch.rand(1, 256, int(h) // 8, int(w) // 8)
box = [0.0, w / 2 - m * w / 2, h / 2 - m * h / 2, w / 2 + m * w / 2, h / 2 + m * h / 2]
layer = RoIAlign(14, spatial_scale=1 / 8, sampling_ratio=0, aligned=True)
start = time.perf_counter()
out = layer(feat, torch.tensor([box]))
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(seconds=elapsed, peak_mib=peak, finite=bool(torch.isfinite(out).all()))))
'''


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--image', nargs=2, type=int, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--multiples', nargs='+', type=float, default=[1, 3, 10, 30, 100])
    parser.add_argument('--memory-limit-gib', type=float, default=8.0,
                        help='address-space limit of each child process (a failed allocation instead of swapping)')
    args = parser.parse_args(argv)
    h, w = args.image
    limit = int(args.memory_limit_gib * 2**30)
    print(f'| box / image | box (px) | grid entries | time (s) | peak memory (MiB) | result |')
    print('|---|---|---|---|---|---|')
    for m in args.multiples:
        grid = -(-int(m * h / 8) // 14) * -(-int(m * w / 8) // 14) * 196
        proc = subprocess.run(
            [sys.executable, '-c', f'import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n'
             + CHILD, str(h), str(w), str(m)], capture_output=True, text=True)
        if proc.returncode == 0:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            row = f'{r["seconds"]:.3f} | {r["peak_mib"]:.0f} | ok'
        else:
            error = (proc.stderr.strip().splitlines() or ['killed'])[-1][:80]
            row = f'- | - | failed (rc {proc.returncode}): {error}'
        print(f'| {m:g} | {m * w:.0f} x {m * h:.0f} | {grid:.3g} | {row} |')


if __name__ == '__main__':
    main()
