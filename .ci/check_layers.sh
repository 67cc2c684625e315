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
# Installed from a clean copy of the working tree (tracked and untracked-not-ignored files): a
# build folder or egg-info lying in the checkout would hide a module the package list misses.
mkdir -p "$work/src"
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$work/src"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation --no-compile --target "$site" "$work/src" \
  >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; exit 1; }
top=$(cd "$site" && ls -d */ | sed 's#/##' | grep -v -e '\.dist-info$' -e '^bin$' | sort | tr '\n' ' ')
echo "installed top-level packages: $top"
[ "$top" = "imagesr " ] || { echo "check_layers: expected only imagesr at the top of site-packages" >&2; exit 1; }
# every module of the repository's layers is in the installed package
missing=$(git ls-files -co --exclude-standard 'imagesr/*.py' 'training/*.py' 'components/*.py' 'pipelines/*.py' 'schemas/*.py' \
  | sed -e 's#^training/#imagesr/training/#' -e 's#^components/#imagesr/components/#' \
        -e 's#^pipelines/#imagesr/pipelines/#' -e 's#^schemas/#imagesr/schemas/#' \
  | while read -r f; do [ -f "$site/$f" ] || echo "$f"; done)
[ -z "$missing" ] || { echo "check_layers: not installed: $missing (pyproject.toml packages)" >&2; exit 1; }
(cd "$site" && PYTHONPATH=. "$root/.venv/bin/lint-imports" --config "$root/pyproject.toml")
