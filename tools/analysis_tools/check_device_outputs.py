"""Same model, same weights, same image: do CPU and CUDA (and CUDA fp16) give the same detections?

    python tools/analysis_tools/check_device_outputs.py [--models NAME ...] [--size H W] [--out FILE.json]

A check for a GPU machine (the test suite runs on CPU only). Each model of ``compare_models``'s zoo is built once
with random weights (seed 0, score thresholds 0 as in the benchmark's worst case), run on the CPU, moved to CUDA
and run again (fp32, then half weights). Detections are matched by rank (both sorted by score): reported are the
number of detections, the share of ranks with the same label and a box within ``--box-tol`` pixels, the largest
score and box differences over those, and the mean IoU of the pasted masks of matched detections. Random weights
give many near-equal scores, so a handful of swapped ranks is expected where two scores differ by float rounding;
a wrong device path shows up as a crash, a different count or low agreement.

TF32 is turned off for the CUDA run (``torch.backends.cudnn.allow_tf32 = False``; ``--tf32`` keeps PyTorch's
default, on): cuDNN's TF32 convolutions round inputs to 10 mantissa bits, which with random weights through 39
unnormalised layers (frozen BN at mean 0 / var 1) reorders most detections of V2-39 (the measured agreement, with and
without TF32, is in docs/benchmarks.md).
"""
import argparse
import json
import sys

import torch

# model_comparison.py of this folder: Python puts a script's own directory first on sys.path
from model_comparison import MODEL_ZOO, build_model, make_batch, set_precision


def summary(reference, other, box_tol):
    a, b = reference.pred_instances, other.pred_instances
    n = min(len(a), len(b))
    out = dict(detections=(len(a), len(b)))
    if n == 0:
        return out
    a_boxes, b_boxes = a.bboxes[:n].float().cpu(), b.bboxes[:n].float().cpu()
    box_diff = (a_boxes - b_boxes).abs().amax(dim=1)
    same = (a.labels[:n].cpu() == b.labels[:n].cpu()) & (box_diff <= box_tol)
    out.update(matched=f'{int(same.sum())}/{n}',
               max_score_diff=float((a.scores[:n].float().cpu() - b.scores[:n].float().cpu())[same].abs().max())
               if same.any() else None,
               max_box_diff_px=float(box_diff[same].max()) if same.any() else None)
    if 'masks' in a and same.any():
        ma, mb = a.masks[:n][same].cpu().bool(), b.masks[:n][same].cpu().bool()
        inter = (ma & mb).flatten(1).sum(1).float()
        union = (ma | mb).flatten(1).sum(1).float()
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))  # both empty: equal
        out['mean_mask_iou'] = float(iou.mean())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=['CenterMask V2-39', 'CenterMask R-50', 'CenterMask-Lite V-19'],
                        choices=list(MODEL_ZOO), metavar='NAME')
    parser.add_argument('--size', nargs=2, type=int, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--box-tol', type=float, default=0.5)
    parser.add_argument('--tf32', action='store_true', help="keep cuDNN's TF32 convolutions (PyTorch's default)")
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    if not torch.cuda.is_available():
        sys.exit('check_device_outputs.py compares CPU with CUDA: no CUDA device is visible')
    report = {}
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(MODEL_ZOO[name], 'cpu')
        data = make_batch(1, *args.size)
        with torch.no_grad():
            cpu = model.test_step(data)[0]
            model.cuda()
            cuda = model.test_step(data)[0]
            context = set_precision(model, 'fp16')
            with context():
                half = model.test_step(data)[0]
        report[name] = dict(cuda_fp32=summary(cpu, cuda, args.box_tol),
                            cuda_fp16=summary(cpu, half, max(args.box_tol, 2.0)))
        print(name, json.dumps(report[name]))
        del model
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()
