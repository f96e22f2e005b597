#!/usr/bin/env bash
# Build an mmcv wheel *with compiled ops* from its sdist, against the torch of a given Python.
#
#   tools/build_mmcv_wheel.sh PYTHON OUT_DIR [MMCV_VERSION [DISTRIBUTION]]
#
# DISTRIBUTION is mmcv (the default, official OpenMMLab) or onedl-mmcv (the maintained fork: same import name
# and build, its own sdist on PyPI). Handles what breaks on today's stack (see docs/get_started.md):
#   * mmcv's setup.py imports pkg_resources  -> needs setuptools<82 in PYTHON's env, built --no-build-isolation
#     (an isolated build has no torch and silently skips the ops);
#   * mmcv 2.1.0 and onedl-mmcv 2.3.x hard-code -std=c++17, torch>=2.13 headers need C++20 -> patched in the
#     unpacked sdist;
#   * CUDA kernels are built (FORCE_CUDA=1) when torch sees a GPU and nvcc is on PATH.
# Prints a heartbeat with the number of compiled objects, since the CPU build takes ~13 min on 2 cores.
set -euo pipefail
# Everything runs inside main(), which bash parses whole before running: editing this file
# while it runs cannot break the run.
main() {

  usage="usage: build_mmcv_wheel.sh PYTHON OUT_DIR [MMCV_VERSION [DISTRIBUTION]]"
  PY=${1:?$usage}
  OUT=${2:?$usage}
  VER=${3:-2.1.0}
  DIST=${4:-mmcv}
  case "$DIST" in
    mmcv | onedl-mmcv) ;;
    *) echo "[build-mmcv] unknown DISTRIBUTION=$DIST: mmcv or onedl-mmcv"; exit 2 ;;
  esac
  stem=${DIST//-/_}   # the sdist's and the wheel's file names: mmcv-2.1.0.tar.gz, onedl_mmcv-2.3.6.tar.gz
  mkdir -p "$OUT"
  work=$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")

  say() { echo "[build-mmcv] $*"; }

  say "downloading the $DIST==$VER sdist"
  "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$work" "$DIST==$VER"
  tar -xzf "$work/$stem-$VER.tar.gz" -C "$work"
  src="$work/$stem-$VER"

  torch_cxx=$("$PY" - <<'EOF'
import torch
major, minor = (int(p) for p in torch.__version__.split('+')[0].split('.')[:2])
print('c++20' if (major, minor) >= (2, 13) else 'c++17')
EOF
  )
  if [ "$torch_cxx" = "c++20" ]; then
    say "torch >= 2.13 needs C++20: patching -std=c++17 -> -std=c++20 in the sdist's setup.py"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    grep -q -- '-std=c++20' "$src/setup.py" || { say "patch did not apply"; exit 1; }
  fi

  cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')
  if [ "$cuda" = "1" ] && command -v nvcc >/dev/null 2>&1; then
    say "CUDA GPU and nvcc found: building CUDA kernels too (FORCE_CUDA=1)"
    export FORCE_CUDA=1
  else
    say "no CUDA GPU (or no nvcc): building the CPU kernels only"
  fi

  jobs=${MAX_JOBS:-$(nproc)}
  if [ "${FORCE_CUDA:-0}" = "1" ]; then
    total=$(find "$src/mmcv/ops/csrc/pytorch" -name '*.cpp' -o -name '*.cu' | wc -l)
  else
    total=$(find "$src/mmcv/ops/csrc/pytorch" -maxdepth 1 -name '*.cpp' | wc -l)
    total=$(( total + $(find "$src/mmcv/ops/csrc/pytorch/cpu" -name '*.cpp' | wc -l) ))
  fi
  say "compiling about $total sources with MAX_JOBS=$jobs (log: $work/build.log)"
  start=$(date +%s)
  ( cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=$jobs "$PY" -m pip wheel -v --no-deps --no-build-isolation \
      -w "$work/dist" . >"$work/build.log" 2>&1 ) &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    done_objs=$(find "$src" -name '*.o' 2>/dev/null | wc -l)
    say "still compiling: $done_objs/$total objects, $(( $(date +%s) - start ))s elapsed"
  done
  if ! wait "$pid"; then
    tail -n 60 "$work/build.log"
    say "build FAILED (sources and log kept in $work)"
    exit 1
  fi
  whl=$(ls "$work"/dist/"$stem"-*.whl)
  # A wheel without _ext would make `import mmdet` fail later: refuse it here.
  cp "$whl" "$OUT/"
  if ! "$PY" -c 'import sys, zipfile; sys.exit(not any(n.startswith("mmcv/_ext") for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$whl"; then
    say "wheel has no mmcv/_ext: ops were skipped (log kept in $work)"
    rm -f "$OUT/$(basename "$whl")"
    exit 1
  fi
  rm -rf "$work"
  say "built $(basename "$whl") in $(( $(date +%s) - start ))s -> $OUT"
}

main "$@"
