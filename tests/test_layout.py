"""The repository's shape: import boundaries between packages, the CLI root, compose.yaml."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "ingress", "edge", "control")

# Which of our packages each package may import (see docs/architecture.md).
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "ingress": {"common"},
    "edge": {"common"},
    "control": {"common"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_it_may(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in (ROOT / package).rglob("*.py")
        if "node_modules" not in path.parts
        if (bad := imported_packages(path) - ALLOWED[package] - {package})
    }
    assert offenders == {}


def test_cli_root_lists_every_component() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "common.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("pki", "local", "ingress", "edge", "demo", "control", "admin"):
        assert f"  {name}\n" in out


def test_cli_root_rejects_unknown_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "common.cli", "nope"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "no such command 'nope'" in result.stderr


def test_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose (Debian package) is needed; ./dev test installs it"
    result = subprocess.run(
        [compose, "-f", str(ROOT / "compose.yaml"), "config", "--services"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"origin", "ingress-1", "ingress-2", "agent-1"}
