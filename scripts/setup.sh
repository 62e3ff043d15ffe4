#!/usr/bin/env bash
# Sets up .venv in the repo root: the studio (and with --test, the test tools) plus the default backbone's
# pretrained weights. Idempotent: a second run with nothing changed takes about a second.
#   scripts/setup.sh          # the studio
#   scripts/setup.sh --test   # the studio and its test tools
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      python_bin="$candidate"; break
    fi
  done
fi
if [[ -z "$python_bin" ]]; then
  echo "setup: Python 3.11 is needed (PySide6 6.11 and the torch 2.11 stack); install it, or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($python_bin --version)"
  "$python_bin" -m venv .venv
fi

# Reinstall only when the dependency list or the requested extras changed.
base=".venv/.tlstudio-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
stamp="${base}${extras:+-test}"
# A test install includes everything the studio needs, so it also satisfies a plain set-up.
if [[ ! -f "$stamp" && ! ( -z "$extras" && -f "${base}-test" ) ]]; then
  echo "setup: installing tlstudio${extras} and its dependencies into .venv (the first time, torch is ~2.6 GB)"
  log=".venv/setup.log"
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -e ".${extras}"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup: installing failed; the whole log is in $log" >&2
    exit 1
  fi
  rm -f .venv/.tlstudio-setup-*
  touch "$stamp"
fi

# The tests synthesise speech (espeak-ng) and load Qt's sound library (libpulse0).
if [[ -n "$extras" ]] && { ! command -v espeak-ng >/dev/null 2>&1 || ! ldconfig -p | grep -q libpulse.so.0; }; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing espeak-ng and libpulse0 (system packages the tests need)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng libpulse0; } \
      >.venv/apt.log 2>&1 || { tail -n 20 .venv/apt.log >&2; echo "setup: apt-get failed" >&2; exit 1; }
  else
    echo "setup: the tests need espeak-ng and libpulse0; install them (e.g. sudo apt-get install espeak-ng libpulse0)" >&2
    exit 1
  fi
fi

# The default backbone works out of the box, also on machines that cannot reach the model host.
.venv/bin/tlstudio weights fetch mobilenet_v2 | tail -n 1
