"""The built wheel installs one import name, gronkoll (DESIGN decision 11)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# Repository folder -> where its modules live in the wheel.
PACKAGE_DIRS = {
    "gronkoll": "gronkoll",
    "collector": "gronkoll/collector",
    "api": "gronkoll/api",
    "schedules": "gronkoll/schedules",
    "dashboards": "gronkoll/dashboards",
    "config": "gronkoll/config",
}
_NOT_SOURCE = {".git", ".venv", "build", "dist", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


def _ignore(directory: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
    if Path(directory) == REPO:
        ignored |= _NOT_SOURCE & set(names)
    return ignored


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the work tree: a build in place leaves build/ and *.egg-info in it."""
    copy = tmp_path_factory.mktemp("source") / "gronkoll"
    shutil.copytree(REPO, copy, ignore=_ignore)
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("gronkoll-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_has_one_top_level_name(wheel: zipfile.ZipFile) -> None:
    top_level = {
        name.split("/")[0].removesuffix(".py")
        for name in wheel.namelist()
        if not name.split("/")[0].endswith((".dist-info", ".data"))
    }

    assert top_level == {"gronkoll"}


def test_wheel_holds_every_module_of_the_package_folders(
    source: Path, wheel: zipfile.ZipFile
) -> None:
    in_wheel = set(wheel.namelist())
    expected = {
        f"{package}/{module.relative_to(source / folder).as_posix()}"
        for folder, package in PACKAGE_DIRS.items()
        for module in (source / folder).rglob("*.py")
        if "__pycache__" not in module.parts
    }

    assert {f"{package}/__init__.py" for package in PACKAGE_DIRS.values()} <= expected
    assert sorted(expected - in_wheel) == []


def test_wheel_ships_the_example_config_and_every_profile(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "gronkoll/config/example.yaml" in names
    profiles = sorted((REPO / "config" / "profiles").glob("*.yaml"))
    assert profiles
    for path in profiles:
        assert f"gronkoll/config/profiles/{path.name}" in names
    assert "gronkoll/migrations/script.py.mako" in names
