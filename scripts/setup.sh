#!/usr/bin/env bash
# Set up everything the course needs on a bare Debian machine, idempotently:
# an OpenCL runtime (PoCL, a CPU device), bubblewrap for sandboxed grading, a virtual environment with the pinned packages,
# and the course package itself (tinytorch + the `course` command) in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# 1. System packages, installed only when missing:
#    - Debian's PoCL OpenCL runtime for module 06 (PyPI's pocl-binary-distribution does not
#      build kernels on every CPU);
#    - bubblewrap, the sandbox every submission is graded in;
#    - PostgreSQL, the gradebook of a real course (the tests grade into it and into SQLite);
#    - Chromium, the browser tests/test_browser.py drives (Playwright never downloads one).
need=()
ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 || need+=(pocl-opencl-icd ocl-icd-libopencl1)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL running, with the role the tests use (TEST_PG_URL in the tests)
if [ "$(id -u)" -eq 0 ]; then AS_PG="runuser -u postgres --"; SUDO=""; else AS_PG="sudo -u postgres"; SUDO="sudo"; fi
if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  echo "setup: starting PostgreSQL"
  $SUDO service postgresql start >/dev/null
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
fi
if ! $AS_PG psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='coursekit'" | grep -q 1; then
  $AS_PG psql -q -c "CREATE ROLE coursekit LOGIN CREATEDB PASSWORD 'coursekit'"
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
