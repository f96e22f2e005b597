"""An ablation table and a speed-vs-accuracy picture from finished runs, in one command.

    python tools/analysis_tools/ablation_table.py WORK_DIR [WORK_DIR ...] --out docs/ablations.md \
        [--plot docs/ablations.png] [--labels A B ...] [--input-size H [W]] [--repeats 10] [--threads 1] \
        [--keep-score-thr]

Each WORK_DIR is the work dir of mmdet's tools/train.py or tools/test.py. From it: mask, Boundary and box AP of the
last logged evaluation, the dumped config and the last checkpoint; the loaded model's parameters and FLOPs (mmengine's
get_model_complexity_info, as mmdet's get_flops.py) and its CPU latency (median of --repeats predicts of one fixed
input, --threads threads). Writes a markdown table (headed by date, machine, torch version and this command) to
--out and a PNG of mask AP against latency to --plot (default: --out with .png). What is read where:
:mod:`centermask_mm.utils.ablation_table`.
"""
import argparse
import os
import os.path as osp
import shlex
import sys

from centermask_mm.utils.ablation_table import collect, environment_line, markdown_table, plot_speed_accuracy


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR', help='work dirs of finished runs')
    parser.add_argument('--out', required=True, help='markdown file to write the table to')
    parser.add_argument('--plot', help='PNG of mask AP against CPU latency (default: --out with .png)')
    parser.add_argument('--labels', nargs='+', help='a row label per work dir (default: the work dir names)')
    parser.add_argument('--input-size', type=int, nargs='+', default=[320], metavar='H [W]',
                        help='input size of the FLOPs count and the latency (default: 320 x 320)')
    parser.add_argument('--repeats', type=int, default=10, help='timed predicts per run (the median is reported)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed predicts before timing')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--keep-score-thr', action='store_true',
                        help="keep the configs' test-time score thresholds (default: 0, so every model makes its "
                             'maximum number of detections and the mask branch runs on as many RoIs in every row)')
    args = parser.parse_args(argv)
    if len(args.input_size) not in (1, 2):
        parser.error('--input-size takes H or H W')
    return args


def main(argv=None):
    args = parse_args(argv)
    size = tuple(args.input_size) * (2 // len(args.input_size))
    score_thr = None if args.keep_score_thr else 0.0
    try:
        rows = collect(args.work_dirs, size, repeats=args.repeats, threads=args.threads, labels=args.labels,
                       score_thr=score_thr, warmup=args.warmup)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'ablation_table: {err}')
    command = shlex.join(['python', osp.relpath(osp.abspath(__file__)), *(sys.argv[1:] if argv is None else argv)])
    table = markdown_table(rows, environment_line(command, args.threads, size, args.repeats, score_thr))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(table)
    plot = args.plot or osp.splitext(args.out)[0] + '.png'
    plot_speed_accuracy(rows, plot)
    print(table)
    print(f'table: {args.out}\nplot: {plot}')


if __name__ == '__main__':
    main()
