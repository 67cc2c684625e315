#!/usr/bin/env bash
# One-step set-up of a development machine: system ffmpeg, a Python 3.10 virtualenv in .venv
# with imagesr, its pipeline stack (the pinned extras of pyproject.toml) and the test tools.
# Idempotent: does nothing when .venv is already installed from the current pyproject.toml.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); cd "$root"

# ffmpeg: Debian's package when missing (the tests use the real binary).
if ! command -v ffmpeg >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ffmpeg (apt-get)" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >/dev/null
  else
    echo "setup: no ffmpeg and no apt-get; install ffmpeg, or pip install imageio-ffmpeg" >&2
  fi
fi

# Python 3.10 (TFX 1.16, the pipeline extra, supports 3.9-3.10): $PYTHON, python3.10 on PATH,
# or a pyenv 3.10.x.
source infra/find_python.sh

stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/imagesr ]; then
  exit 0
fi
py=$(find_python 3.10) || { echo "setup: Python 3.10 not found (set PYTHON=/path/to/python3.10)" >&2; exit 1; }
echo "setup: creating .venv with $py" >&2
[ -x .venv/bin/python ] || "$py" -m venv .venv
t0=$(date +%s)
.venv/bin/python -m pip install -q --upgrade "pip>=24" setuptools wheel
.venv/bin/python -m pip install -q -e '.[pipeline,tf,test]'
touch "$stamp"
echo "setup: done ($(.venv/bin/python --version), $(ffmpeg -version 2>/dev/null | head -n 1 | cut -d' ' -f1-3)):" \
  "the full install ([pipeline,tf,test]) took $(( $(date +%s) - t0 )) s, .venv is $(du -sm .venv | cut -f1) MB" >&2
