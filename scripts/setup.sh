#!/usr/bin/env bash
# Set up everything the course needs on a bare Debian machine, idempotently:
# an OpenCL runtime (PoCL, a CPU device), a virtual environment with the pinned packages,
# and the course package itself (tinytorch + the `course` command) in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# 1. OpenCL runtime for module 06 (Debian's PoCL works with the pyopencl wheel; PyPI's
#    pocl-binary-distribution does not build kernels on every CPU).
#    Chromium: the browser that tests/test_browser.py drives (Playwright never downloads one).
if ! ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 || ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing the OpenCL runtime (pocl-opencl-icd) and chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pocl-opencl-icd ocl-icd-libopencl1 chromium >/dev/null
fi

# 2. Virtual environment with the pinned packages (only when the pins changed).
stamp="$VENV/.installed"
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: creating $VENV and installing pinned packages"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  "$VENV/bin/python" -m pip check
  echo "$want" > "$stamp"
fi
echo "setup: ready ($("$VENV/bin/python" --version), $VENV)"
