"""Convert a published CenterMask detector (centermask2 or the maskrcnn-benchmark paper code) for centermask_mm.

    python tools/model_converters/centermask2mmdet.py SRC DST [--config CONFIG]

SRC is read with ``weights_only=True`` (solver state and counters are admitted, nothing that runs code). The source
layout, the backbone arch, its DCN stages and full vs Lite are detected; the zoo config of that model
(``configs/centermask/...``, or ``--config``) is built and every one of its parameters and buffers must be covered
with the right shape, and every source tensor used, or nothing is written. Files saved by detectron2 <= v0.3
carry the input normalisation (``pixel_mean`` / ``pixel_std``): it must equal the config's ``data_preprocessor``
(else the settings that match are printed). Then evaluate with ``tools/test.py CONFIG DST``.

The published weights are non-commercial (centermask2 / vovnet-detectron2: CC BY-NC 4.0); converted files inherit
their licence, which the report prints.
"""
import argparse
import os.path as osp
import pickle
import sys

from centermask_mm.converters.centermask import (CenterMaskConversionError, check_for_config,
                                                 load_centermask_checkpoint, save_converted_detector)

ZOO = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'centermask')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='published checkpoint (.pth): centermask2 or maskrcnn-benchmark CenterMask')
    parser.add_argument('dst', help='where to write the converted mmengine checkpoint')
    parser.add_argument('--config', help='check against this config instead of the detected zoo config')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        result = load_centermask_checkpoint(args.src)
        print(f'detected: {result.summary()}')
        config = args.config or osp.join(ZOO, result.config_name())
        if not osp.exists(config):
            raise CenterMaskConversionError(f'no zoo config {result.config_name()} for this model; pass --config')
        report = check_for_config(result, config)
    except (CenterMaskConversionError, pickle.UnpicklingError, OSError) as err:
        print(f'error: {args.src}: {err}', file=sys.stderr)
        return 1
    save_converted_detector(result, args.dst, config=osp.relpath(config))
    print(f'converted {len(result.state_dict)} tensors into {args.dst}')
    for line in report:
        print(line)
    print(f'config: {osp.relpath(config)}')
    print(f'evaluate: python tools/test.py {osp.relpath(config)} {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
