#!/usr/bin/env bash
# Create .venv with everything the studio needs; `--dev` adds what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -r requirements.txt
if [[ "${1:-}" == "--dev" ]]; then
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
fi
