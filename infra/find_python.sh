# Sourced by the set-up scripts: find_python X.Y prints the path of a Python X.Y interpreter:
# $PYTHON (when it is X.Y), pythonX.Y on PATH, or the newest pyenv X.Y.z. No hard-coded paths.
find_python() {
  local want=$1 c v
  for c in "${PYTHON:-}" "python$want"; do
    [ -n "$c" ] || continue
    if v=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && [ "$v" = "$want" ]; then
      command -v "$c"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}\.[0-9]+$" | sort -t. -k3 -n | tail -n 1)
    if [ -n "$v" ] && [ -x "$(pyenv root)/versions/$v/bin/python$want" ]; then
      echo "$(pyenv root)/versions/$v/bin/python$want"; return 0
    fi
  fi
  return 1
}
