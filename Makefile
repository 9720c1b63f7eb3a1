# Two commands do everything on a fresh machine (each sets up .venv first, idempotently):
#   make demo   - the main job on the offline default (see README)
#   make test   - the test suite
PY := .venv/bin/python

.PHONY: setup demo test
setup:
	bash scripts/setup.sh

demo: setup
	$(PY) train.py --config configs/offline_demo.yaml
	$(PY) -m evaluation_ecmc.run_evaluation --checkpoint outputs/demo/checkpoint --config configs/offline_demo.yaml

test: setup
	$(PY) -m pytest -q tests
