"""Run a trained model on images and save them with masks, boxes, class names and scores drawn (mmdet's
DetInferencer and visualiser, with centermask_mm loaded).

    python demo/image_demo.py IMAGE CONFIG --weights CKPT --out-dir DIR [--device cpu|cuda] [--pred-score-thr 0.3]
        [--fuse-conv-bn] [--channels-last]

IMAGE is a file or a folder; the drawings land in DIR/vis/ (and the raw predictions in DIR/preds/).
"""
import argparse

import torch
from mmdet.apis import DetInferencer

import centermask_mm  # noqa: F401  (registration + safe checkpoint loading)
from centermask_mm.engine import speed_up_for_inference


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', help='image file or folder')
    parser.add_argument('config', help='model config')
    parser.add_argument('--weights', required=True, help='checkpoint')
    parser.add_argument('--out-dir', default='outputs', help='where to write vis/ and preds/')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--pred-score-thr', type=float, default=0.3, help='draw instances above this score')
    parser.add_argument('--fuse-conv-bn', action='store_true', help='fold BatchNorm into the convolutions')
    parser.add_argument('--channels-last', action='store_true', help='channels-last convolutions')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    inferencer = DetInferencer(model=args.config, weights=args.weights, device=args.device, show_progress=False)
    if args.fuse_conv_bn or args.channels_last:
        speed_up_for_inference(inferencer.model, args.fuse_conv_bn, args.channels_last)
    inferencer(args.inputs, out_dir=args.out_dir, pred_score_thr=args.pred_score_thr, no_save_pred=False)
    print(f'results written to {args.out_dir}/vis and {args.out_dir}/preds')


if __name__ == '__main__':
    main()
