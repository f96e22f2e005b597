"""Convert ImageNet-pretrained VoVNet weights (detectron2 or timm layout) for centermask_mm's VoVNet.

    python tools/model_converters/vovnet2mmdet.py SRC DST

SRC is read with ``weights_only=True`` (a file that would run code is refused, named, exit status 1). The layout
and arch are detected; classifier keys are dropped and reported; unknown or missing keys are refused. Load DST with
``init_cfg=dict(type='Pretrained', checkpoint=DST)``.
"""
import argparse
import pickle
import sys

from centermask_mm.converters.vovnet import VoVNetConversionError, load_vovnet_weights, save_converted


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='source weights (.pth): detectron2 or timm VoVNet layout')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        result = load_vovnet_weights(args.src)
    except (VoVNetConversionError, pickle.UnpicklingError, OSError) as err:  # unsafe or unreadable: no traceback
        print(f'error: {args.src}: {err}', file=sys.stderr)
        return 1
    save_converted(result, args.dst)
    print(f'layout: {result.layout}' + (f" (stripped prefix '{result.stripped_prefix}')" if result.stripped_prefix
                                        else ''))
    print(f'arch: {result.arch}, ese_last_block_only={result.ese_last_block_only}')
    print(f'converted {len(result.state_dict)} tensors; dropped {len(result.dropped_keys)} keys'
          + (f" (e.g. {', '.join(k for k in result.dropped_keys if 'num_batches' not in k)[:200]})"
             if result.dropped_keys else ''))
    print(f'backbone config: {result.backbone_cfg()}')
    print(f'wrote {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
