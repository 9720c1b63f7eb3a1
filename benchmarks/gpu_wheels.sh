#!/usr/bin/env bash
# Download the pure-Python transformers wheel that modeling_ecmc needs into .whl/ (repo root), so it
# can travel to a lent GPU machine whose image has an older transformers (5.17 there: no
# SubConfigSpec, outputs still named past_key_values). Its dependencies (huggingface-hub >= 1.31,
# tokenizers 0.23.x, safetensors >= 0.8) are already on that image. See benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${TRANSFORMERS_VERSION:-$(.venv/bin/python -c 'import transformers; print(transformers.__version__)' 2>/dev/null || echo 5.24.0)}"
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    -d .whl "transformers==${VERSION}"
ls -l .whl
