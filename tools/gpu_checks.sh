#!/usr/bin/env bash
# The GPU checks of this project, in one run, on a machine with a CUDA GPU, nvcc and torch but no package registry
# (such as the lent H100/H200 machines: Python 3.12, no mmcv/mmengine/mmdet).
#
#   tools/gpu_checks.sh WHEEL_DIR OUT_DIR
#
# WHEEL_DIR holds the pure/py3.12 wheels of mmengine, mmdet, pycocotools, shapely, terminaltables, addict, yapf,
# termcolor, platformdirs, setuptools<81 (mmcv's setup.py imports pkg_resources), timm (step 4; it imports without
# its optional huggingface_hub / safetensors / pyyaml) and mmcv's sdist
# (mmcv-2.1.0.tar.gz); fetch them where pip works:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d WHEEL_DIR ...
#   pip download --no-deps --no-binary :all: --no-build-isolation -d WHEEL_DIR mmcv==2.1.0
# Steps (each under a time limit, results written to OUT_DIR as they come, in order of importance):
#   1. mmcv's CUDA ops built in place (one architecture, all cores);
#   2. CUDA graphs alone (benchmark_speedups --cuda-graph without the other two): the predictions must be identical
#      to the eager ones (sorted-score diff 0) and the time ratio;
#   3. all inference speed-ups (--fuse-conv-bn --channels-last --cuda-graph): compare_models, CenterMask models and
#      Mask R-CNN R-50, batch 1 and 8, fp32 then half weights (the issue's GPU targets), the V2-39 profile;
#   4. the VoVNet backbones against timm's on CUDA (the target: at most 1.05x timm's time);
#   5. fuse + channels-last without graphs (benchmark_speedups fp32), and SOLOv2 with them;
#   6. compare_models on CUDA, fp32, every model of the zoo (batch 1 and 8, training step);
#   7. CPU vs CUDA outputs (fp32, fp16) of CenterMask V2-39, R-50, Lite V-19.
# The analysis tools import model_comparison.py from their own folder; results go to docs/benchmarks.md.
set -uo pipefail
WHL=${1:?usage: gpu_checks.sh WHEEL_DIR OUT_DIR}
OUT=${2:?usage: gpu_checks.sh WHEEL_DIR OUT_DIR}
mkdir -p "$OUT"
t0=$(date +%s)
say() { echo "[gpu-checks $(( $(date +%s) - t0 ))s] $*"; }
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl \
  || { say "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site

say "building mmcv's CUDA ops"
src=/tmp/mmcv-src
mkdir -p "$src" && tar -xzf "$WHL"/mmcv-*.tar.gz -C "$src" && src=$(ls -d "$src"/mmcv-*)
arch=$(python3 -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
if ! (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=$(nproc) TORCH_CUDA_ARCH_LIST=$arch \
      python3 setup.py build_ext --inplace >/tmp/mmcv_build.log 2>&1); then
  tail -n 40 /tmp/mmcv_build.log; say "mmcv build FAILED"; exit 1
fi
export PYTHONPATH=$src:/tmp/site:$PWD
python3 - <<'EOF' || { say "mmcv CUDA ops do not run"; exit 1; }
import torch, mmcv, mmdet
from mmcv.ops import nms, RoIAlign
boxes = torch.rand(100, 4, device='cuda') * 100; boxes[:, 2:] += boxes[:, :2]
nms(boxes, torch.rand(100, device='cuda'), 0.5)
RoIAlign(7, 1.0, 0, aligned=True)(torch.rand(1, 8, 32, 32, device='cuda'), torch.tensor([[0, 1., 1., 20., 20.]], device='cuda'))
print('mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(),
      'CUDA ops ran')
EOF
say "mmcv ready"

step() {  # step SECONDS NAME COMMAND...: run with a limit, keep the log in OUT, show its tail
  local limit=$1 name=$2; shift 2
  say "$name (limit ${limit}s)"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  grep -v -E '^\s*$|Warning|warn|^  (import|with|return|_bootstrap)' "$OUT/$name.log" | tail -n "${TAIL:-40}"
  say "$name: exit $rc"
}

CM=("CenterMask V2-39" "CenterMask R-50" "CenterMask-Lite V-19" "Mask R-CNN R-50")
ALL=("${CM[@]}" "CenterMask V2-99" "CenterMask-Lite V-19-slim-dw" "CenterMask-Lite V-39" "MS R-CNN R-50"
     "CondInst R-50" "YOLACT R-50" "RTMDet-Ins-tiny" "RTMDet-Ins-s" "SOLOv2 R-50" "Mask R-CNN V2-39")
SPEEDUPS=(--fuse-conv-bn --channels-last --cuda-graph)
# in order of importance: CUDA graphs (identical outputs?), all speed-ups on the targets; then the rest
step 60 cuda_graph_only python3 tools/analysis_tools/benchmark_speedups.py --device cuda --warmup 3 --repeats 15 \
  --no-fuse-conv-bn --no-channels-last --cuda-graph --models "CenterMask V2-39" "CenterMask R-50" \
  "CenterMask-Lite V-19" --out "$OUT/cuda_graph_only.json"
step 90 cuda_speedups_fp32 python3 tools/analysis_tools/compare_models.py --device cuda --batch 8 --warmup 3 \
  --repeats 15 --no-flops --no-train "${SPEEDUPS[@]}" --models "${CM[@]}" --out "$OUT/cuda_speedups_fp32.json"
step 70 cuda_speedups_fp16 python3 tools/analysis_tools/compare_models.py --device cuda --batch 8 --warmup 3 \
  --repeats 15 --no-flops --no-train --precision fp16 "${SPEEDUPS[@]}" --models "${CM[@]:0:3}" \
  --out "$OUT/cuda_speedups_fp16.json"
TAIL=0 step 25 profile_v2-39_speedups python3 tools/analysis_tools/profile_predict.py --device cuda --rows 30 \
  "${SPEEDUPS[@]}"
grep -E 'per test_step|host reads' "$OUT/profile_v2-39_speedups.log"
step 25 vovnet_vs_timm python3 tools/analysis_tools/benchmark_vovnet.py --device cuda --size 800 1216 --repeats 20 \
  --arch ese_vovnet19b_dw ese_vovnet39b ese_vovnet99b
step 40 speedups_fp32 python3 tools/analysis_tools/benchmark_speedups.py --device cuda --warmup 3 --repeats 15 \
  --out "$OUT/speedups_fp32.json"
step 50 solov2_speedups python3 tools/analysis_tools/compare_models.py --device cuda --batch 8 --warmup 3 \
  --repeats 15 --no-flops --no-train --fuse-conv-bn --channels-last --models "Mask R-CNN R-50" "SOLOv2 R-50" \
  --out "$OUT/solov2_speedups.json"
TAIL=60 step 200 cuda_fp32 python3 tools/analysis_tools/compare_models.py --device cuda --batch 8 --warmup 3 \
  --repeats 15 --no-flops --models "${ALL[@]}" --out "$OUT/cuda_fp32.json"
step 40 device_outputs python3 tools/analysis_tools/check_device_outputs.py
say "done"
