# `make test` and `make demo` set the environment up first (tools/setup_env.sh; idempotent, seconds when nothing
# changed). The environment is ./.venv; the mmcv wheel it builds is cached in ~/.cache/centermask_mm.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env test test-fast demo benchmark clean-env

env:
	bash tools/setup_env.sh

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-fast: env
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

demo: env
	$(PY) tools/toy_demo.py

# the README's VoVNet-against-timm row (5): every arch, median of 15 alternating runs, 2 threads
benchmark: env
	$(PY) tools/analysis_tools/benchmark_vovnet.py --repeats 15 --threads 2

clean-env:
	rm -rf .venv
