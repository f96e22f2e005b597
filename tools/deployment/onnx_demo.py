"""Run an exported CenterMask (tools/deployment/export_onnx.py) with ONNX Runtime on images and save them drawn as
demo/image_demo.py draws PyTorch's results (mmdet's DetLocalVisualizer: masks, boxes, class names and scores).

    python tools/deployment/onnx_demo.py IMAGE CONFIG MODEL.onnx --out-dir DIR [--pred-score-thr 0.3]

IMAGE is a file or a folder; the drawings land in DIR/vis/. CONFIG is the model's config: its test pipeline and
data_preprocessor prepare the image, its test_cfg finishes the detections (clipping, mask pasting) outside the graph.
Classes and palette come from the ONNX file (stored at export from the checkpoint), else from the config's dataset.
"""
import argparse
import os
import os.path as osp
import time

import mmcv
from mmdet.registry import DATASETS, VISUALIZERS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import centermask_mm  # noqa: F401  (registration)
from centermask_mm.deployment import ORTCenterMask

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', help='image file or folder')
    parser.add_argument('config', help='the config the model was exported from')
    parser.add_argument('onnx', help='exported model')
    parser.add_argument('--out-dir', default='outputs', help='where to write vis/')
    parser.add_argument('--pred-score-thr', type=float, default=0.3, help='draw instances above this score')
    parser.add_argument('--threads', type=int, default=None, help='ONNX Runtime intra-op threads')
    return parser.parse_args(argv)


def dataset_meta(runner: ORTCenterMask, cfg: Config) -> dict:
    meta = runner.dataset_meta
    if meta is None:
        dataset_cfg = cfg.test_dataloader.dataset
        meta = dict(getattr(DATASETS.get(dataset_cfg.type), 'METAINFO', {}), **dataset_cfg.get('metainfo', {}))
    meta = dict(meta)
    if isinstance(meta.get('palette'), list):
        meta['palette'] = [tuple(c) for c in meta['palette']]
    return meta


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    runner = ORTCenterMask(args.onnx, cfg, num_threads=args.threads)
    visualizer_cfg = dict(cfg.visualizer, name=f'onnx_demo_{time.time_ns()}')
    visualizer = VISUALIZERS.build(visualizer_cfg)
    visualizer.dataset_meta = dataset_meta(runner, cfg)
    if osp.isdir(args.inputs):
        images = sorted(osp.join(args.inputs, f) for f in os.listdir(args.inputs)
                        if f.lower().endswith(IMAGE_EXTENSIONS))
    else:
        images = [args.inputs]
    for path in images:
        result = runner(path)
        image = mmcv.imread(path)[:, :, ::-1]  # RGB, as DetInferencer draws
        out_file = osp.join(args.out_dir, 'vis', osp.basename(path))
        visualizer.add_datasample(osp.basename(path), image, result, show=False, draw_gt=False,
                                  pred_score_thr=args.pred_score_thr, out_file=out_file)
        print(f'{path}: {len(result.pred_instances)} detections, '
              f'{int((result.pred_instances.scores > args.pred_score_thr).sum())} drawn -> {out_file}')


if __name__ == '__main__':
    main()
