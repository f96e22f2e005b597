"""CPU (or CUDA) forward latency of centermask_mm's VoVNet vs timm's same variant, in one process.

    python tools/analysis_tools/benchmark_vovnet.py [--arch ese_vovnet39b ...] [--size 224 288] [--repeats 30]

Both models are built with the same weights layout (eSE on the last block, as timm), in eval mode under
``torch.inference_mode``; runs alternate between the two models and the median of ``--repeats`` runs is reported,
with ratio = ours / timm (target <= 1.05).
"""
import argparse
import statistics
import time

import timm
import torch
from timm.models import vovnet

from centermask_mm.converters.vovnet import convert_vovnet_state_dict
from centermask_mm.models.backbones import VoVNet

TIMM_NAMES = ['ese_vovnet19b_slim_dw', 'ese_vovnet19b_dw', 'ese_vovnet19b_slim', 'ese_vovnet19b', 'ese_vovnet39b',
              'ese_vovnet57b', 'ese_vovnet99b', 'vovnet39a', 'vovnet57a']


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', nargs='+', default=TIMM_NAMES, help='timm variant names')
    parser.add_argument('--size', nargs=2, type=int, default=[224, 288], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s)')
    return parser.parse_args()


def timed(fn, x, device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(x)
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'device={args.device} threads={torch.get_num_threads()} input={args.batch}x3x{args.size[0]}x'
          f'{args.size[1]} repeats={args.repeats} (median ms)')
    print(f'{"timm variant":<24}{"arch":<20}{"timm ms":>10}{"ours ms":>10}{"ratio":>8}')
    for name in args.arch:
        if name in timm.list_models('*vovnet*'):
            reference = timm.create_model(name, pretrained=False)
        else:  # timm registers no ese_vovnet19b, but its model_cfgs table has it
            reference = vovnet.VovNet(vovnet.model_cfgs[name])
        reference = reference.eval().to(args.device)
        conversion = convert_vovnet_state_dict(reference.state_dict())
        ours = VoVNet(arch=conversion.arch, out_indices=(0, 1, 2, 3), ese_last_block_only=True)
        ours.load_state_dict(conversion.state_dict)
        ours = ours.eval().to(args.device)
        x = torch.randn(args.batch, 3, *args.size, device=args.device)
        times = {'timm': [], 'ours': []}
        with torch.inference_mode():
            for i in range(args.warmup + args.repeats):
                for key, fn in (('timm', reference.forward_features), ('ours', ours)):
                    t = timed(fn, x, args.device)
                    if i >= args.warmup:
                        times[key].append(t)
        t_ref, t_ours = (statistics.median(times[k]) * 1000 for k in ('timm', 'ours'))
        print(f'{name:<24}{conversion.arch:<20}{t_ref:>10.2f}{t_ours:>10.2f}{t_ours / t_ref:>8.3f}', flush=True)


if __name__ == '__main__':
    main()
