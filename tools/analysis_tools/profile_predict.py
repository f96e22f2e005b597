"""Where one ``test_step`` spends its time: torch.profiler tables of a model of ``compare_models``'s zoo.

    python tools/analysis_tools/profile_predict.py [--model "CenterMask V2-39"] [--device cpu|cuda]
        [--precision fp32|amp|fp16] [--size H W] [--batch 1] [--nms-input 1000] [--rows 25] [--fuse-conv-bn]
        [--channels-last] [--cuda-graph]

Random weights, the trained-like regime of ``compare_models`` (score thresholds 0, at most ``--nms-input``
candidates into NMS). Prints the wall time of the profiled calls, the number of aten calls, sync-like ops
(``compare_models``'s ``SYNC_OPS``; on a CPU run the host reads ``.tolist()`` / ``.item()`` do not show as
operators) and CUDA kernel launches per call; the host reads and host-to-device copies of one more call (Python
calls, :func:`count_host_transfers`, the same on any device); and the operators sorted by self device time and by
self CPU time (host-side cost, which dominates a launch-bound GPU run).
"""
import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from centermask_mm.engine import speed_up_for_inference

# model_comparison.py of this folder: Python puts a script's own directory first on sys.path
from model_comparison import (MODEL_ZOO, PRECISIONS, SYNC_OPS, build_model, cap_nms_input, count_host_transfers,
                              make_batch, set_precision)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='CenterMask V2-39', choices=list(MODEL_ZOO))
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--precision', default='fp32', choices=PRECISIONS)
    parser.add_argument('--size', nargs=2, type=int, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1, help='images per test_step')
    parser.add_argument('--nms-input', type=int, default=1000)
    parser.add_argument('--calls', type=int, default=5, help='profiled calls (after 3 warm-up calls)')
    parser.add_argument('--rows', type=int, default=25)
    parser.add_argument('--fuse-conv-bn', action='store_true', help='BatchNorm folded into the convolutions')
    parser.add_argument('--channels-last', action='store_true', help='channels-last convolutions')
    parser.add_argument('--cuda-graph', action='store_true', help='backbone, neck, head replayed from CUDA graphs')
    args = parser.parse_args()
    model = build_model(MODEL_ZOO[args.model], args.device)
    context = set_precision(model, args.precision)
    if args.fuse_conv_bn or args.channels_last or args.cuda_graph:
        speed_up_for_inference(model, args.fuse_conv_bn, args.channels_last, args.cuda_graph)
    data = make_batch(args.batch, *args.size)
    cuda = args.device.startswith('cuda')
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.no_grad(), cap_nms_input(args.nms_input), context():
        for _ in range(3):
            model.test_step(data)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with profile(activities=activities) as prof:
            for _ in range(args.calls):
                model.test_step(data)
            if cuda:
                torch.cuda.synchronize()
        wall = (time.perf_counter() - start) * 1000 / args.calls
    events = prof.events()
    aten = [e for e in events if e.name.startswith('aten::') and
            (e.cpu_parent is None or not e.cpu_parent.name.startswith('aten::'))]
    launches = [e for e in events if e.name in ('cudaLaunchKernel', 'cuLaunchKernel', 'cudaLaunchKernelExC')]
    syncs = [e for e in events if e.name in SYNC_OPS]
    print(f'{args.model} on {args.device} ({torch.cuda.get_device_name() if cuda else "cpu"}), {args.precision}, '
          f'batch {args.batch} of {args.size[0]}x{args.size[1]}: {wall:.2f} ms per test_step under the profiler, '
          f'{len(aten) / args.calls:.0f} aten calls, {len(syncs) / args.calls:.0f} sync-like ops and '
          f'{len(launches) / args.calls:.0f} kernel launches per call')
    with context():
        transfers = count_host_transfers(model, data, args.nms_input)
    print(f'host reads (tolist, item, nonzero, bool) {transfers["host_reads"]}, host-to-device copies (tensor, '
          f'new_tensor, as_tensor) {transfers["host_to_device_copies"]} per call (Python calls, any device)')
    averages = prof.key_averages()
    if cuda:
        print(averages.table(sort_by='self_cuda_time_total', row_limit=args.rows))
    print(averages.table(sort_by='self_cpu_time_total', row_limit=args.rows))


if __name__ == '__main__':
    main()
