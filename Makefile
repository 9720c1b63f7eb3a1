# Two commands do everything on a fresh machine (each sets up .venv first, idempotently):
#   make demo   - the main job on the offline default (see README)
#   make test   - the test suite
PY := .venv/bin/python

.PHONY: setup demo test
setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m processing_ecmc.synth --output outputs/ecmc-synth --preset demo
	$(PY) -m processing_ecmc.data_cli build --manifest outputs/ecmc-synth/manifest.jsonl --output outputs/ecmc-synth-dataset
	$(PY) -m modeling_ecmc.build_offline --output outputs/offline-default

test: setup
	$(PY) -m pytest -q tests
