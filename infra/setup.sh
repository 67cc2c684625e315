#!/usr/bin/env bash
# One-step set-up of a development machine: system ffmpeg, a Python 3.10 virtualenv in .venv
# with imagesr and its pinned stack (pyproject.toml) plus the test extras.
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

# Python 3.10 (TFX 1.16 supports 3.9-3.10): $PYTHON, python3.10 on PATH, or a pyenv 3.10.x.
find_python() {
  local c v
  for c in "${PYTHON:-}" python3.10; do
    [ -n "$c" ] || continue
    if v=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && [ "$v" = 3.10 ]; then
      command -v "$c"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10\.[0-9]+$' | sort -t. -k3 -n | tail -n 1)
    if [ -n "$v" ] && [ -x "$(pyenv root)/versions/$v/bin/python3.10" ]; then
      echo "$(pyenv root)/versions/$v/bin/python3.10"; return 0
    fi
  fi
  return 1
}

stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/imagesr ]; then
  exit 0
fi
py=$(find_python) || { echo "setup: Python 3.10 not found (set PYTHON=/path/to/python3.10)" >&2; exit 1; }
echo "setup: creating .venv with $py" >&2
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=24" setuptools wheel
.venv/bin/python -m pip install -q -e '.[test]'
touch "$stamp"
echo "setup: done ($(.venv/bin/python --version), $(ffmpeg -version 2>/dev/null | head -n 1 | cut -d' ' -f1-3))" >&2
