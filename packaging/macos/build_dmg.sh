#!/usr/bin/env bash
# macOS: builds "Transfer Learning Studio.app" with the same spec (its BUNDLE step), signs it for the hardened
# runtime when a Developer ID is given, checks it with --self-test, and wraps it in a .dmg with hdiutil.
# Run from the repository root on a Mac after scripts/setup.sh:
#   packaging/macos/build_dmg.sh
#   CODESIGN_IDENTITY="Developer ID Application: NAME (TEAMID)" packaging/macos/build_dmg.sh   # signed
# Notarisation (needs an Apple ID / App Store Connect key): packaging/macos/NOTARIZE.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[[ "$(uname -s)" == Darwin ]] || { echo "build_dmg: run this on macOS (hdiutil, codesign)" >&2; exit 1; }
[[ -x .venv/bin/python ]] || { echo "build_dmg: run scripts/setup.sh first" >&2; exit 1; }
py=.venv/bin/python
"$py" -c "import PyInstaller" >/dev/null 2>&1 || "$py" -m pip install -q "pyinstaller>=6.11"
"$py" -m tlstudio weights where mobilenet_v2 | grep -q "(present)" || "$py" -m tlstudio weights fetch mobilenet_v2
[[ -f resources/icons/tlstudio.icns ]] || "$py" packaging/make_icons.py

version="$("$py" -c 'import tlstudio; print(tlstudio.__version__)')"
arch="$(uname -m)"
app="dist/Transfer Learning Studio.app"
dmg="dist/tlstudio-${version}-macos-${arch}.dmg"

"$py" -m PyInstaller packaging/tlstudio.spec --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller/macos

if [[ -n "${CODESIGN_IDENTITY:-}" ]]; then
  # Sign inside-out with the hardened runtime and the entitlements torch needs (JIT / unsigned executable memory).
  find "$app/Contents" -type f \( -name "*.dylib" -o -name "*.so" \) -print0 |
    xargs -0 codesign --force --timestamp --options runtime --entitlements packaging/macos/entitlements.plist \
      --sign "$CODESIGN_IDENTITY"
  codesign --force --deep --timestamp --options runtime --entitlements packaging/macos/entitlements.plist \
    --sign "$CODESIGN_IDENTITY" "$app"
  codesign --verify --deep --strict --verbose=2 "$app"
else
  echo "build_dmg: CODESIGN_IDENTITY not set: the app is ad-hoc signed (Gatekeeper will ask on first open)"
  codesign --force --deep --sign - "$app"
fi

# The bundle must pass its own check, with an empty HOME (no user cache, so the bundled weights are used).
env -i HOME="$(mktemp -d)" PATH=/usr/bin:/bin QT_QPA_PLATFORM=offscreen \
  "$app/Contents/MacOS/tlstudio" --self-test

staging="$(mktemp -d)"
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
rm -f "$dmg"
hdiutil create -volname "Transfer Learning Studio" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$dmg"
rm -rf "$staging"
[[ -n "${CODESIGN_IDENTITY:-}" ]] && codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "$dmg"
du -sh "$app" "$dmg"
echo "build_dmg: wrote $dmg"
