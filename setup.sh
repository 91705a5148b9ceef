#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 and install trialsynth with its test extras.
# PyMC 6 / ArviZ 1.x need Python 3.12+; on machines whose python3 is older, pip would
# silently resolve to PyMC 5, so we refuse to go on without a suitable interpreter.
# Usage: ./setup.sh            (set TRIALSYNTH_PYTHON=/path/to/python to choose one)
set -euo pipefail
cd "$(dirname "$0")"

ok() {  # prints the interpreter's path if it runs and is >= 3.12
  "$1" -c 'import sys; assert sys.version_info >= (3, 12); print(sys.executable)' 2>/dev/null
}

find_python() {
  local c
  if [ -n "${TRIALSYNTH_PYTHON:-}" ]; then ok "$TRIALSYNTH_PYTHON" && return 0
    echo "setup: TRIALSYNTH_PYTHON=$TRIALSYNTH_PYTHON is not a Python >= 3.12" >&2; return 1; fi
  # Commands on PATH first (a pyenv shim may exist but fail: ok() runs each one).
  for c in python3.12 python3.13 python3.14 python3; do
    command -v "$c" >/dev/null 2>&1 && ok "$c" && return 0
  done
  # Interpreters installed but not activated (pyenv, uv, /usr/local).
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 \
           "$HOME"/.local/share/uv/python/cpython-3.1[2-9]*/bin/python3 \
           /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    [ -x "$c" ] && ok "$c" && return 0
  done
  return 1
}

if [ ! -x .venv/bin/python ] || ! ok .venv/bin/python >/dev/null; then
  py=$(find_python) || {
    echo "setup: no Python >= 3.12 found (tried python3.12..3.14, python3, pyenv and uv installs);" \
         "install one or set TRIALSYNTH_PYTHON" >&2; exit 1; }
  echo "setup: using $py"
  rm -rf .venv
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The lock file pins the versions CI and BENCHMARKS.md were measured with.
.venv/bin/python -m pip install -q -c requirements-lock.txt -e ".[test]"
# An editable install gets no bytecode from pip, and with PYTHONDONTWRITEBYTECODE set (as on
# our machines) Python never writes it: every command would compile trialsynth's ~110
# modules from source (0.2-0.3 s). Compile them once; a .pyc whose source changed is ignored.
.venv/bin/python -m compileall -q -j 0 src/trialsynth >/dev/null
echo "setup: ready ($(.venv/bin/python --version)); run: .venv/bin/trialsynth --help"
