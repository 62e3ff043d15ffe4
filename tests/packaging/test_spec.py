"""The installer recipe ships what the app loads: resources, weights, hidden imports; the recipes are well formed.

Derived from the code, not from a list kept by hand: a resource the code reads that would not ship, or an
import PyInstaller cannot see that the spec does not name, fails here before any installer is built.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "tlstudio.spec"


def _load_manifest():
    spec = importlib.util.spec_from_file_location("tlstudio_bundle_manifest", PACKAGING / "bundle_manifest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


manifest = _load_manifest()


def _sources() -> list[Path]:
    return sorted(p for p in (ROOT / "tlstudio").rglob("*.py") if "__pycache__" not in p.parts)


def _resource_paths_read_by_code() -> set[str]:
    """`files("tlstudio.resources") / "a" / "b"` anywhere in tlstudio/ -> "a/b"."""
    pattern = re.compile(r"""files\(\s*["']tlstudio\.resources["']\s*\)((?:\s*/\s*["'][^"']+["'])+)""")
    found = set()
    for path in _sources():
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            found.add("/".join(re.findall(r"""["']([^"']+)["']""", match.group(1))))
    return found


def test_the_spec_takes_its_data_from_the_manifest() -> None:
    text = SPEC.read_text(encoding="utf-8")
    for needed in ("manifest.resource_datas()", "manifest.weights_datas()", "manifest.HIDDEN_IMPORTS",
                   "manifest.EXCLUDES", 'collect_submodules("tlstudio")'):
        assert needed in text, f"tlstudio.spec no longer uses {needed}"


def test_every_resource_file_ships_where_importlib_resources_reads_it() -> None:
    shipped = {(Path(src).resolve(), dest) for src, dest in manifest.resource_datas()}
    on_disk = [p for p in (ROOT / "resources").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert on_disk
    for path in on_disk:
        folder = path.parent.relative_to(ROOT / "resources").as_posix()
        dest = "tlstudio/resources" + ("" if folder == "." else f"/{folder}")
        assert (path.resolve(), dest) in shipped, f"{path.relative_to(ROOT)} is not in the bundle"


def test_every_resource_the_code_reads_exists_and_ships() -> None:
    read = _resource_paths_read_by_code()
    assert {"style.qss", "demo/shapes"} <= read  # the scan still sees the known readers
    shipped = {Path(src).resolve() for src, _ in manifest.resource_datas()}
    for relative in read:
        target = (ROOT / "resources" / relative).resolve()
        assert target.exists(), f"the code reads resources/{relative}, which does not exist"
        files = [target] if target.is_file() else [p.resolve() for p in target.rglob("*") if p.is_file()]
        assert files and all(f in shipped for f in files), f"resources/{relative} does not ship"


def test_the_application_icons_exist_in_every_format() -> None:
    from PIL import Image

    icons = ROOT / "resources" / "icons"
    with Image.open(icons / "tlstudio.png") as png:
        assert png.size[0] == png.size[1] >= 256 and png.mode == "RGBA"
    with Image.open(icons / "tlstudio.ico") as ico:
        assert (16, 16) in ico.info["sizes"] and (256, 256) in ico.info["sizes"]
    icns = (icons / "tlstudio.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)


def _optional_and_dynamic_imports() -> set[str]:
    """Modules imported inside `try: ... except ImportError` (optional: PyInstaller must be told to keep them)
    and by name (`importlib.import_module("x")`, `__import__("x")`), across tlstudio/."""
    found: set[str] = set()
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Try):
                catches_import_error = any(
                    isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                    for h in node.handlers)
                if catches_import_error:
                    for inner in node.body:
                        for sub in ast.walk(inner):
                            if isinstance(sub, ast.Import):
                                found.update(alias.name for alias in sub.names)
                            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                                if sub.module == "PySide6":  # `from PySide6 import QtMultimedia`
                                    found.update(f"PySide6.{alias.name}" for alias in sub.names)
                                else:
                                    found.add(sub.module)
            elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                    found.add(node.args[0].value)
    return found


def test_the_spec_names_every_import_the_scan_cannot_rely_on() -> None:
    hidden = set(manifest.HIDDEN_IMPORTS)
    needed = {m for m in _optional_and_dynamic_imports() if not m.startswith("tlstudio")}
    assert {"onnxruntime", "PySide6.QtMultimedia"} <= needed  # the scan still finds the known ones
    missing = sorted(m for m in needed if m not in hidden and m.split(".")[0] not in hidden)
    assert not missing, f"add to HIDDEN_IMPORTS in packaging/bundle_manifest.py: {missing}"
    # tlstudio.resources is mapped from resources/ by pyproject.toml, which the import scan cannot follow
    assert "tlstudio.resources" in hidden
    assert not hidden & set(manifest.EXCLUDES)


def test_the_weights_patterns_pick_up_the_default_and_later_yamnet(tmp_path: Path) -> None:
    for name in ("mobilenet_v2-b0353104.pth", "yamnet-0123abcd.pth", "resnet50-11ad3fa6.pth", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    names = [p.name for p in manifest.weights_files(tmp_path)]
    assert names == ["mobilenet_v2-b0353104.pth", "yamnet-0123abcd.pth"]
    assert manifest.missing_required_weights(tmp_path) == []
    assert all(dest == "torch_home/hub/checkpoints" for _src, dest in manifest.weights_datas(tmp_path))
    (tmp_path / "mobilenet_v2-b0353104.pth").unlink()
    assert manifest.missing_required_weights(tmp_path) == ["mobilenet_v2-b0353104.pth"]


def test_the_bundled_weights_folder_is_where_the_frozen_app_looks() -> None:
    from tlstudio import frozen

    assert f"{frozen.BUNDLED_TORCH_HOME}/hub/checkpoints" == manifest.WEIGHTS_DEST


def test_the_spec_builds_one_folder_not_one_file() -> None:
    text = SPEC.read_text(encoding="utf-8")
    assert "exclude_binaries=True" in text and "COLLECT(" in text
    assert "onefile" not in text.lower().replace("one file", "")
    assert "BUNDLE(" in text  # the macOS .app comes from the same spec


def test_the_linux_desktop_entry() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(PACKAGING / "linux" / "tlstudio.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    assert entry["Exec"].split()[0] == "tlstudio" and entry["Icon"] == "tlstudio"
    assert entry["Categories"].endswith(";") and "application/x-tlstudio-project" in entry["MimeType"]


def test_the_windows_installer_script() -> None:
    text = (PACKAGING / "windows" / "tlstudio.iss").read_text(encoding="utf-8")
    sections = re.findall(r"^\[(\w+)\]", text, flags=re.M)
    assert {"Setup", "Files", "Icons", "Registry", "Run"} <= set(sections)
    assert re.search(r"^PrivilegesRequired=lowest$", text, flags=re.M)
    assert re.search(r"^DefaultDirName=\{autopf\}", text, flags=re.M)  # per-user Programs folder without admin
    assert "Software\\Classes\\.tlsproj" in text and "{uninstallexe}" in text
    assert '""%1""' in text  # the project file reaches the program
    for source in re.findall(r'^(?:SetupIconFile)=(.+)$', text, flags=re.M):
        assert (PACKAGING / "windows" / source.replace("\\", "/")).resolve().is_file()


def test_the_macos_recipe() -> None:
    import plistlib

    entitlements = plistlib.loads((PACKAGING / "macos" / "entitlements.plist").read_bytes())
    assert entitlements["com.apple.security.cs.allow-jit"] is True
    assert entitlements["com.apple.security.cs.allow-unsigned-executable-memory"] is True
    script = (PACKAGING / "macos" / "build_dmg.sh").read_text(encoding="utf-8")
    assert "packaging/tlstudio.spec" in script and "hdiutil create" in script and "--self-test" in script


def test_the_ci_workflow_builds_and_self_tests_on_three_systems() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["build"]
    systems = {entry["os"].split("-")[0] for entry in job["strategy"]["matrix"]["include"]}
    assert systems == {"ubuntu", "windows", "macos"}
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "--self-test" in runs and "upload-artifact" in " ".join(step.get("uses", "") for step in job["steps"])


def test_the_workflow_is_well_formed_text() -> None:
    """Without PyYAML: tabs and unbalanced brackets are the usual ways a hand-edited workflow breaks."""
    text = (ROOT / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8")
    assert "\t" not in text
    assert text.count("${{") == text.count("}}")
    for line in text.splitlines():
        assert len(line) - len(line.lstrip(" ")) in range(0, 40, 2), line
