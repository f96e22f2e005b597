#!/usr/bin/env bash
# The mask-quality ablations on the toy data (docs/benchmarks.md, "Mask quality on the toy data"): CenterMask-Lite
# V2-19-slim-dw from scratch, each variant with the same short schedule and seed, then the table and the
# speed-accuracy picture of tools/analysis_tools/ablation_table.py.
#
#   tools/analysis_tools/toy_ablations.sh [WORK_ROOT] [ITERS]     (defaults: work_dirs/toy_ablations 500)
#
# A variant whose work dir already holds its last checkpoint is not trained again. Training runs one torch thread
# (THREADS=1; the table's latency is measured afterwards with its own --threads), one variant at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=${1:-work_dirs/toy_ablations}
iters=${2:-500}
PY=${PY:-.venv/bin/python}
toy=configs/toy/centermask-lite_v2-19-slim-dw_fpn_toy.py
# name | config | extra --cfg-options
variants=(
  "sag-mask-28|$toy|"
  "fcn-no-sam|$toy|model.roi_head.mask_head.with_sam=False"
  "sag-mask-56|configs/toy/centermask-lite_v2-19-slim-dw_fpn_mask-56_toy.py|"
  "sag-mask-point-rend|configs/toy/centermask-lite_v2-19-slim-dw_fpn_point-rend_toy.py|"
  "k-max-7|$toy|model.roi_head.mask_roi_extractor.k_max=7"
  "no-maskiou|$toy|model.roi_head.mask_iou_head=None"
)
schedule="train_cfg.max_iters=$iters train_cfg.val_interval=$iters default_hooks.checkpoint.interval=$iters
  param_scheduler.1.end=$iters param_scheduler.1.milestones=[$((iters * 8 / 10))] randomness.seed=0"
dirs=()
for variant in "${variants[@]}"; do
  IFS='|' read -r name config extra <<< "$variant"
  dir=$root/$name
  dirs+=("$dir")
  if [ -f "$dir/iter_$iters.pth" ]; then
    echo "[toy_ablations] $name: $dir/iter_$iters.pth exists, not trained again"
    continue
  fi
  echo "[toy_ablations] $name: training $config for $iters iterations"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=${THREADS:-1} "$PY" tools/train.py "$config" --work-dir "$dir" --cfg-options $schedule $extra
done
"$PY" tools/analysis_tools/ablation_table.py "${dirs[@]}" --out docs/toy_ablations.md --input-size 128 128 --threads 2
