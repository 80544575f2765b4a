#!/usr/bin/env bash
# Create .venv with everything the studio needs; `--dev` adds what the tests need.
# System packages (Debian): fonts-dejavu-core (the PDF storyboard's Unicode font), its
# fallbacks for other scripts (fonts-noto-core: Hebrew, Arabic; fonts-noto-cjk;
# fonts-noto-color-emoji) and, for the tests, chromium (the browser test) and postgresql (the
# test run starts a throwaway server with its initdb and pg_ctl); installed only when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -r requirements.txt

missing=()
[[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
[[ -f /usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf ]] || missing+=(fonts-noto-core)
[[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]] || missing+=(fonts-noto-cjk)
[[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]] || missing+=(fonts-noto-color-emoji)
if [[ "${1:-}" == "--dev" ]]; then
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
fi
if (( ${#missing[@]} )); then
  SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
