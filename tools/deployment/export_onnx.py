"""Export CenterMask / CenterMask-Lite to ONNX (standard ops only: RoiAlign, NonMaxSuppression, TopK...).

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W] [--dynamic] [--opset 17]

The graph takes the pre-processed image (``image [1, 3, H, W]``: resized, normalised and padded as the config's
pipeline and data_preprocessor do) and ``img_shape [2]`` (int64 h, w of the resized image inside the padding), and
returns ``boxes [N, 4]`` (unclipped, input coordinates), ``labels [N]``, ``scores [N]``, ``mask_scores [N]``
(MaskIoU-rescored) and ``masks [N, 28, 28]`` (mask probabilities of each box's class, relative to its box). Boxes
are clipped and masks pasted outside the graph (centermask_mm.deployment.postprocess_outputs; see
tools/deployment/onnx_demo.py). --dynamic: any H, W (multiples of the pad_size_divisor); batch 1.
"""
import argparse

from mmdet.apis import init_detector
from mmdet.utils import register_all_modules

import centermask_mm  # noqa: F401  (registration + safe checkpoint loading)
from centermask_mm.deployment import DEFAULT_OPSET, export_onnx


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for random weights")
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument('--shape', type=int, nargs=2, default=(320, 320), metavar=('H', 'W'),
                        help='input size traced (and the only one accepted without --dynamic)')
    parser.add_argument('--dynamic', action='store_true', help='accept any input height and width')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (>= 16)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model = init_detector(args.config, checkpoint, device='cpu')
    proto = export_onnx(model, args.out, shape=tuple(args.shape), dynamic=args.dynamic, opset=args.opset,
                        dataset_meta=model.dataset_meta)
    ops = sorted({node.op_type for node in proto.graph.node})
    print(f'exported {args.out}: opset {args.opset}, input {"dynamic" if args.dynamic else tuple(args.shape)}, '
          f'{len(proto.graph.node)} nodes, standard ONNX ops only: {", ".join(ops)}')


if __name__ == '__main__':
    main()
