#!/usr/bin/env bash
# Create (or refresh) the project environment of one OpenMMLab stack: a venv with the stack's pins
# (requirements/constraints.txt or constraints_onedl.txt), its mmcv built with ops (cached outside the
# repo), the stack's other libraries (requirements/<stack>.txt), the test dependencies and
# centermask_mm[<stack>] in editable mode. Idempotent: a second run with nothing changed only checks
# the imports.
#
#   tools/setup_env.sh                  (what `make env` runs: the official stack in ./.venv)
#   STACK=onedl tools/setup_env.sh      (what `make env STACK=onedl` runs: the maintained fork in ./.venv-onedl)
#
# Environment: STACK (openmmlab | onedl, default openmmlab), PYTHON (default python3.11),
#              VENV (default ./.venv, ./.venv-onedl for STACK=onedl),
#              CENTERMASK_MM_CACHE (default ~/.cache/centermask_mm) holds the built mmcv wheels.
set -euo pipefail
# Everything runs inside main(), which bash parses whole before running: editing this file
# while it runs cannot break the run.
main() {
  cd "$(dirname "$0")/.."
  root=$(pwd)

  STACK=${STACK:-openmmlab}
  say() { echo "[setup:$STACK] $*"; }
  case "$STACK" in
    openmmlab) CONSTRAINTS=$root/requirements/constraints.txt; default_venv=$root/.venv ;;
    onedl) CONSTRAINTS=$root/requirements/constraints_onedl.txt; default_venv=$root/.venv-onedl ;;
    *) say "unknown STACK=$STACK: the stacks are openmmlab (the default) and onedl"; exit 2 ;;
  esac
  PYTHON=${PYTHON:-python3.11}
  VENV=${VENV:-$default_venv}
  CACHE=${CENTERMASK_MM_CACHE:-$HOME/.cache/centermask_mm}
  STACK_REQUIREMENTS=$root/requirements/$STACK.txt
  t0=$(date +%s)

  # what a working environment imports (the test dependencies included: `make test` needs them)
  imports="import centermask_mm, mmcv._ext, mmdet, pytest, hypothesis, mmseg.models, mmpretrain.models, panopticapi.utils
from mmcv.ops import RoIAlign, nms, ModulatedDeformConv2dPack"
  check_imports() {
    "$VENV/bin/python" -c "$imports" 2>/dev/null
  }

  # What the environment was made from: if none of it changed and the imports work, we are done.
  stamp_value=$(cat "$CONSTRAINTS" "$STACK_REQUIREMENTS" requirements/tests.txt requirements/tests_nodeps.txt setup.py tools/setup_env.sh tools/build_mmcv_wheel.sh | sha1sum | cut -c1-16)
  stamp_file=$VENV/.centermask_mm_env
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_value" ] && check_imports; then
    say "environment at $VENV is up to date ($(( $(date +%s) - t0 ))s)"
    exit 0
  fi

  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the venv $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
  fi
  # (the grep drops pip's noise about this machine's unused local index folders; pip's exit status is kept)
  pip_install() {
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" "$@" 2>&1 |
      { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  }

  say "build tools: setuptools<82 (mmcv and mmengine import pkg_resources), wheel, ninja, psutil, packaging"
  pip_install --upgrade pip "setuptools>=77,<82" wheel ninja psutil packaging
  say "torch and torchvision (about a minute from the local wheel store)"
  pip_install torch torchvision

  # the stack's mmcv distribution (mmcv or onedl-mmcv) and its pinned version, read from the constraints
  mmcv_dist=$(sed -n 's/^\(\(onedl-\)\{0,1\}mmcv\)==.*/\1/p' "$CONSTRAINTS")
  mmcv_ver=$(sed -n 's/^\(onedl-\)\{0,1\}mmcv==//p' "$CONSTRAINTS")
  wheel_glob="${mmcv_dist//-/_}-*.whl"
  key=$("$VENV/bin/python" - "$mmcv_dist" "$mmcv_ver" <<'EOF'
import sys, torch
flavour = 'cpu'
if torch.cuda.is_available() and torch.version.cuda:
    flavour = 'cu' + torch.version.cuda.replace('.', '')
print(f"{sys.argv[1]}{sys.argv[2]}-torch{torch.__version__.split('+')[0]}-cp{sys.version_info[0]}{sys.version_info[1]}-{flavour}")
EOF
  )
  wheel_dir=$CACHE/wheels/$key
  if "$VENV/bin/python" -c "import mmcv._ext, importlib.metadata as m; assert m.version('$mmcv_dist') == '$mmcv_ver'" 2>/dev/null; then
    say "$mmcv_dist $mmcv_ver with ops already installed"
  else
    if ! ls "$wheel_dir"/$wheel_glob >/dev/null 2>&1; then
      say "no cached $mmcv_dist wheel for $key: building it once (~13 min on 2 cores for mmcv)"
      tmp_out=$(mktemp -d "$CACHE.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE"; mktemp -d "$CACHE/tmp.XXXXXX"; })
      bash tools/build_mmcv_wheel.sh "$VENV/bin/python" "$tmp_out" "$mmcv_ver" "$mmcv_dist"
      mkdir -p "$(dirname "$wheel_dir")"
      rm -rf "$wheel_dir" && mv "$tmp_out" "$wheel_dir"   # publish atomically: a killed build leaves no half wheel
    else
      say "using the cached $mmcv_dist wheel $wheel_dir"
    fi
    pip_install --no-deps --force-reinstall "$wheel_dir"/$wheel_glob
  fi

  say "the stack's libraries ($(grep -v '^#' "$STACK_REQUIREMENTS" | xargs)), the test dependencies," \
      "panopticapi and centermask_mm[$STACK] (editable)"
  pip_install -r "$STACK_REQUIREMENTS" -r requirements/tests.txt
  pip_install --no-deps -r requirements/tests_nodeps.txt
  pip_install --no-build-isolation -e "$root[$STACK]"

  if ! check_imports; then
    "$VENV/bin/python" -c "$imports"
    exit 1
  fi
  echo "$stamp_value" >"$stamp_file"
  say "environment ready at $VENV in $(( $(date +%s) - t0 ))s"
}

main "$@"
