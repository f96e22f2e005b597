"""The main job on the embedded default: train CenterMask-Lite on the generated toy shapes on CPU, evaluate bbox
and segm AP (pycocotools via mmdet's CocoMetric) and Boundary AP (centermask_mm's CocoBoundaryMetric) and draw the
validation predictions.

    python tools/toy_demo.py [--config CONFIG] [--work-dir DIR] [--cfg-options k=v ...]

Runs tools/train.py then tools/test.py (mmdet's tools) as separate processes and prints a summary; the drawn
images land in WORK_DIR/vis/.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = 'configs/toy/centermask-lite_v2-19-slim-dw_fpn_toy.py'
METRICS = ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/segm_mAP_50', 'coco/boundary_mAP')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/toy_demo')
    parser.add_argument('--cfg-options', nargs='+', default=[])
    return parser.parse_args()


def run(cmd):
    print('$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def latest_metrics(paths):
    """The last record holding COCO metrics in mmengine's json logs."""
    found = None
    for path in sorted(paths, key=osp.getmtime):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'coco/segm_mAP' in record:
                    found = record
    return found


def main():
    args = parse_args()
    work_dir = osp.join(ROOT, args.work_dir)
    options = ['--cfg-options', *args.cfg_options] if args.cfg_options else []
    start = time.time()
    run([sys.executable, 'tools/train.py', args.config, '--work-dir', work_dir, *options])
    train_seconds = time.time() - start
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    trained = latest_metrics(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))

    before = set(glob.glob(osp.join(work_dir, '*', '')))
    run([sys.executable, 'tools/test.py', args.config, checkpoint, '--work-dir', work_dir, '--show-dir', 'vis',
         *options])
    test_dirs = sorted(set(glob.glob(osp.join(work_dir, '*', ''))) - before)
    tested = latest_metrics(glob.glob(osp.join(test_dirs[-1], '*.json'))) if test_dirs else None
    vis_dir = osp.join(work_dir, 'vis')
    if test_dirs and osp.isdir(osp.join(test_dirs[-1], 'vis')):
        shutil.rmtree(vis_dir, ignore_errors=True)
        shutil.copytree(osp.join(test_dirs[-1], 'vis'), vis_dir)

    print('\n==== toy demo summary ====')
    print(f'config: {args.config}')
    print(f'training: {train_seconds / 60:.1f} min on {os.cpu_count()} CPU cores; checkpoint {checkpoint}')
    for name, record in (('after training', trained), ('tools/test.py', tested)):
        if record:
            print(f'{name}: ' + ', '.join(f'{k} {record[k]:.3f}' for k in METRICS if k in record))
    pngs = sorted(glob.glob(osp.join(vis_dir, '*.png')))
    print(f'{len(pngs)} drawn validation images in {vis_dir}')
    print(f'total: {(time.time() - start) / 60:.1f} min')


if __name__ == '__main__':
    main()
