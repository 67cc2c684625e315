#!/usr/bin/env bash
# The package as the source tree has it and as users install it:
#  1. the import contracts of pyproject.toml (import-linter) on the source tree as it is;
#  2. a static checker (basedpyright) reading the source tree resolves every imagesr.* import;
#  3. the wheel built from a clean copy of the tree (tracked and untracked-not-ignored files):
#     only imagesr/ at the top of site-packages, every module, shipped model and schema of the tree in it, modules importable
#     from it, and no imagesr.tests, imagesr.setup or imagesr.imagesr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
.venv/bin/lint-imports --config pyproject.toml
.venv/bin/basedpyright --level error
work=$(mktemp -d -t imagesr-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
git ls-files -z -co --exclude-standard | xargs -0 cp -P --parents -t "$work/src"
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$work/src" >"$work/pip.log" 2>&1 \
  || { cat "$work/pip.log" >&2; exit 1; }
.venv/bin/python -m pip install -q --no-deps --no-compile --target "$work/site" "$work"/dist/*.whl >>"$work/pip.log" 2>&1 \
  || { cat "$work/pip.log" >&2; exit 1; }
top=$(cd "$work/site" && ls -d */ | sed 's#/##' | grep -v -e '\.dist-info$' -e '^bin$' | sort | tr '\n' ' ')
echo "wheel $(basename "$work"/dist/*.whl): top-level packages: $top"
[ "$top" = "imagesr " ] || { echo "check_package: expected only imagesr at the top of site-packages" >&2; exit 1; }
missing=$(git ls-files -co --exclude-standard 'imagesr/*.py' 'imagesr/assets/*' 'schemas/*.pbtxt' 'training/*.py' 'components/*.py' 'pipelines/*.py' 'schemas/*.py' \
  | sed -e 's#^training/#imagesr/training/#' -e 's#^components/#imagesr/components/#' \
        -e 's#^pipelines/#imagesr/pipelines/#' -e 's#^schemas/#imagesr/schemas/#' \
  | while read -r f; do [ -f "$work/site/$f" ] || echo "$f"; done)
[ -z "$missing" ] || { echo "check_package: not in the wheel: $missing (pyproject.toml packages)" >&2; exit 1; }
(cd "$work/site" && PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=3 "$root/.venv/bin/python" -W ignore - <<'PY'
import importlib, importlib.util, os, pkgutil, sys
import imagesr
assert os.path.realpath(imagesr.__file__).startswith(os.getcwd()), imagesr.__file__  # the wheel's copy
names = [m.name for m in pkgutil.walk_packages(imagesr.__path__, "imagesr.")]
for n in names:
    importlib.import_module(n)
stray = [n for n in ("imagesr.tests", "imagesr.setup", "imagesr.imagesr", "imagesr.benchmarks")
         if importlib.util.find_spec(n) is not None]
assert not stray, f"importable from the wheel: {stray}"
print(f"wheel: {len(names)} modules import from the installed copy; no tests/setup/imagesr.imagesr")
PY
)
