# `make test` and `make demo` set the environment up first (tools/setup_env.sh; idempotent, seconds when nothing
# changed). STACK picks the OpenMMLab stack: openmmlab (the default: official mmengine/mmcv/mmdet, in ./.venv) or
# onedl (the maintained fork onedl-mm*, in ./.venv-onedl). The mmcv wheels it builds are cached in
# ~/.cache/centermask_mm.
STACK ?= openmmlab
VENV_openmmlab := .venv
VENV_onedl := .venv-onedl
VENV := $(VENV_$(STACK))
ifeq ($(VENV),)
$(error STACK=$(STACK) is not a stack: use STACK=openmmlab (the default) or STACK=onedl)
endif
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: env test test-fast demo benchmark clean-env

env:
	STACK=$(STACK) VENV=$(CURDIR)/$(VENV) bash tools/setup_env.sh

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

# the fast suite, plus the slow tests of what differs between the stacks (marker stack_differences)
test-fast: env
	$(PY) -m pytest tests -m "not slow or stack_differences" $(PYTEST_ARGS)

# DEMO_ARGS passes options to tools/toy_demo.py (e.g. --cfg-options train_cfg.max_iters=20)
demo: env
	$(PY) tools/toy_demo.py $(DEMO_ARGS)

# the README's VoVNet-against-timm row (5): every arch, median of 15 alternating runs, 2 threads
benchmark: env
	$(PY) tools/analysis_tools/benchmark_vovnet.py --repeats 15 --threads 2

clean-env:
	rm -rf $(VENV)
