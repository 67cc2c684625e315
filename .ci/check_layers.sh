#!/usr/bin/env bash
# The installed package: only `imagesr` at the top of site-packages, and its layers import
# downwards only (the contracts in pyproject.toml, checked on the installed tree, where
# imagesr.training & co. are real subpackages).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d -t imagesr-layers-XXXXXX)
trap 'rm -rf "$work"' EXIT
site=$work/site
.venv/bin/python -m pip install -q --no-deps --no-build-isolation --no-compile --target "$site" . >"$work/pip.log" 2>&1 \
  || { cat "$work/pip.log" >&2; exit 1; }
top=$(cd "$site" && ls -d */ | sed 's#/##' | grep -v -e '\.dist-info$' -e '^bin$' | sort | tr '\n' ' ')
echo "installed top-level packages: $top"
[ "$top" = "imagesr " ] || { echo "check_layers: expected only imagesr at the top of site-packages" >&2; exit 1; }
(cd "$site" && PYTHONPATH=. "$root/.venv/bin/lint-imports" --config "$root/pyproject.toml")
