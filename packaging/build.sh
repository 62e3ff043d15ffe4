#!/usr/bin/env bash
# Builds the one-folder bundle dist/tlstudio/ and its archive, and says how big they are against the budget.
# Run from the repository root after scripts/setup.sh:
#   packaging/build.sh                   # Linux CPU variant (default): dist/tlstudio-VERSION-linux-x86_64.tar.gz
#   packaging/build.sh --variant cuda    # with every CUDA library (several GB): ...-linux-x86_64-cuda.tar.gz
#   packaging/build.sh --no-archive      # the folder only (faster when iterating)
#   packaging/build.sh --self-test       # then run the bundle's --self-test with an empty HOME
# Incremental: PyInstaller keeps its analysis in build/pyinstaller/<variant>/, so a re-run with unchanged
# sources skips the analysis. On macOS and Windows CI runs the same spec (see .github/workflows/installers.yml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

variant="${TLSTUDIO_VARIANT:-cpu}"
archive=1
self_test=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --variant) variant="$2"; shift 2 ;;
    --variant=*) variant="${1#*=}"; shift ;;
    --no-archive) archive=0; shift ;;
    --self-test) self_test=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$variant" == cpu || "$variant" == cuda ]] || { echo "build: --variant is cpu or cuda" >&2; exit 2; }

# Budgets (unpacked folder / archive), MiB. Measured numbers and the reasoning: packaging/README.md.
case "$variant" in
  cpu)  budget_dir=3300; budget_archive=1950 ;;
  cuda) budget_dir=4000; budget_archive=2500 ;;
esac

if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; elif [[ -x .venv/Scripts/python.exe ]]; then
  py=.venv/Scripts/python.exe; else
  echo "build: no .venv here; run scripts/setup.sh first" >&2; exit 1
fi
started=$(date +%s)

if ! "$py" -c "import PyInstaller" >/dev/null 2>&1; then
  echo "build: installing PyInstaller into .venv"
  "$py" -m pip install --disable-pip-version-check -q "pyinstaller>=6.11"
fi

# The bundle carries the default backbone's weights, so it works offline from the first start.
if ! "$py" -m tlstudio weights where mobilenet_v2 | grep -q "(present)"; then
  "$py" -m tlstudio weights fetch mobilenet_v2
fi
[[ -f resources/icons/tlstudio.png ]] || "$py" packaging/make_icons.py

version="$("$py" -c 'import tlstudio; print(tlstudio.__version__)')"
case "$(uname -s)" in
  Linux) os=linux ;; Darwin) os=macos ;; MINGW*|MSYS*|CYGWIN*) os=windows ;; *) os="$(uname -s)" ;;
esac
arch="$(uname -m)"; [[ "$arch" == "amd64" ]] && arch=x86_64
name="tlstudio-${version}-${os}-${arch}"
[[ "$os" == linux && "$variant" == cuda ]] && name="${name}-cuda"

echo "build: PyInstaller (variant $variant; analysis cache in build/pyinstaller/$variant)"
log="build/pyinstaller-$variant.log"
mkdir -p build
if ! TLSTUDIO_VARIANT="$variant" "$py" -m PyInstaller packaging/tlstudio.spec --noconfirm --log-level WARN \
      --distpath dist --workpath "build/pyinstaller/$variant" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build: PyInstaller failed; the whole log is in $log" >&2
  exit 1
fi
grep -E "^tlstudio.spec:" "$log" || true
built=$(date +%s)
echo "build: dist/tlstudio/ in $((built - started)) s"

mib() { du -sm "$1" | cut -f1; }
report() {  # what, MiB, budget
  local verdict="within"; [[ "$2" -gt "$3" ]] && verdict="OVER"
  printf 'build: %-32s %6s MiB  (budget %s MiB: %s)\n' "$1" "$2" "$3" "$verdict"
}
report "dist/tlstudio/ (unpacked)" "$(mib dist/tlstudio)" "$budget_dir"
echo "build: the largest parts:"
(cd dist/tlstudio/_internal && du -sm -- * 2>/dev/null | sort -rn | head -n 8 | sed "s/^/         /") || true  # head closes the pipe early: not a failure

if [[ "$archive" == 1 && "$os" == linux ]]; then
  tarball="dist/${name}.tar.gz"
  compressor="gzip"; command -v pigz >/dev/null 2>&1 && compressor="pigz"
  rm -f "$tarball"
  tar -C dist -cf - tlstudio | "$compressor" -6 > "$tarball.part" && mv "$tarball.part" "$tarball"
  report "$tarball" "$(mib "$tarball")" "$budget_archive"

  if command -v appimagetool >/dev/null 2>&1; then
    appdir="build/AppDir"
    rm -rf "$appdir" && mkdir -p "$appdir/usr/bin"
    cp -a dist/tlstudio "$appdir/usr/lib-tlstudio"
    ln -s ../lib-tlstudio/tlstudio "$appdir/usr/bin/tlstudio"
    cp packaging/linux/tlstudio.desktop "$appdir/"
    cp resources/icons/tlstudio.png "$appdir/tlstudio.png"
    printf '#!/bin/sh\nexec "$(dirname "$(readlink -f "$0")")/usr/lib-tlstudio/tlstudio" "$@"\n' > "$appdir/AppRun"
    chmod +x "$appdir/AppRun"
    ARCH="$arch" appimagetool --no-appstream "$appdir" "dist/${name}.AppImage"
    report "dist/${name}.AppImage" "$(mib "dist/${name}.AppImage")" "$budget_archive"
  else
    echo "build: no AppImage: appimagetool is not installed (no package registry carries it; see packaging/README.md)"
  fi
fi
echo "build: done in $(( $(date +%s) - started )) s"

if [[ "$self_test" == 1 ]]; then
  exe=dist/tlstudio/tlstudio; [[ -x dist/tlstudio/tlstudio-cli.exe ]] && exe=dist/tlstudio/tlstudio-cli.exe
  empty_home="$(mktemp -d)"
  env -i HOME="$empty_home" PATH=/usr/bin:/bin QT_QPA_PLATFORM=offscreen "$exe" --self-test
fi
