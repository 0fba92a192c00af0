#!/usr/bin/env bash
# Installs everything explain needs into ./.venv, on a fresh Debian machine or an
# existing one: Graphviz, a CJK font and poppler-utils from apt when missing (as
# root), CPU PyTorch unless a torch is already importable, then the package with
# its test dependencies.  Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then missing+=(fonts-noto-cjk); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install ${missing[*]} (not root or no apt-get); continuing" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  # System site-packages stay visible so that an installed torch is reused.
  "$PYTHON" -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  # The CPU wheel; a bare `torch` requirement would pull several GB of CUDA wheels.
  .venv/bin/pip install -q torch==2.13.0
fi
.venv/bin/pip install -q -e ".[test]"
echo "setup: done; the command is .venv/bin/explain" >&2
