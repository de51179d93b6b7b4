"""docs/api.md and docs/control-plane.md checked against the code, so that they stay true.

No server and no database: the app is built (`create_app`) only for its OpenAPI document, and
everything else is read from the modules themselves (imports, `ast`), never from a list copied
into this file. What is checked:

- every operation of the OpenAPI document has its row in docs/api.md, written
  `` | `METHOD /api/v1/path` | `` and no operation is documented that the app does not serve;
- every problem type the code can produce (the `slug` of every `DomainError` subclass, the
  status map and the literal slugs of `problem(...)` calls in control/) has its row in
  docs/api.md as `` `urn:kokoa:problem:<slug>` `` with its status, and none that it cannot;
- the role table of docs/control-plane.md is exactly control/auth/roles.py;
- every setting (nested ones as `password_hash.time_cost`) has its row in docs/control-plane.md
  with its environment variable and its default, and no row names a setting that is gone.

A new endpoint, problem type, permission or setting fails here until the docs describe it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from control.api import problems
from control.auth.roles import HUMAN_ONLY, LEAST_ROLE, Permission, Role, allows
from control.main import create_app
from control.services.errors import DomainError
from control.settings import KNOWN_DEFAULT_SECRETS, Settings
from tests.control import helpers

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
CONTROL_DOC = ROOT / "docs" / "control-plane.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
Operation = tuple[str, str]

# `POST /api/v1/orgs` anywhere, and as the first cell of a table row.
MENTION = re.compile(rf"`({'|'.join(METHODS)}) (/api/v1[^`\s]*)`")
ROW = re.compile(rf"^\| `({'|'.join(METHODS)}) (/api/v1[^`\s]*)` \|", re.MULTILINE)
PROBLEM = re.compile(r"`urn:kokoa:problem:([a-z0-9-]+)`")
PROBLEM_ROW = re.compile(r"^\| `urn:kokoa:problem:([a-z0-9-]+)` \| ([^|]*) \|", re.MULTILINE)


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("docs")
    settings = helpers.test_settings(f"sqlite+aiosqlite:///{directory}/unused.db", directory)
    return create_app(settings).openapi()


def table(doc: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    """The header cells and the rows of the one Markdown table whose header starts so."""
    lines = doc.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header_start)]
    assert len(starts) == 1, f"want exactly one table starting {header_start!r}"

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    rows = []
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return cells(lines[starts[0]]), rows


# Endpoints


def served(schema: dict[str, Any]) -> set[Operation]:
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method.upper() in METHODS
    }


def undocumented(schema: dict[str, Any], doc: str) -> set[Operation]:
    return served(schema) - set(ROW.findall(doc))


def test_every_operation_has_its_row_in_api_md(openapi: dict[str, Any]) -> None:
    operations = served(openapi)
    assert ("GET", "/api/v1/orgs/{org_id}/services") in operations  # the format we look for
    doc = API_DOC.read_text()
    missing = undocumented(openapi, doc)
    assert not missing, f"add to docs/api.md, as | `METHOD /path` | …: {sorted(missing)}"
    rows = ROW.findall(doc)
    twice = {op for op in rows if rows.count(op) > 1}
    assert not twice, f"documented twice in docs/api.md: {sorted(twice)}"


def test_api_md_names_no_operation_the_app_does_not_serve(openapi: dict[str, Any]) -> None:
    stale = set(MENTION.findall(API_DOC.read_text())) - served(openapi)
    assert not stale, f"docs/api.md names operations the app does not serve: {sorted(stale)}"


def test_an_undocumented_endpoint_would_be_caught(tmp_path: Path) -> None:
    app = create_app(helpers.test_settings(f"sqlite+aiosqlite:///{tmp_path}/unused.db", tmp_path))

    @app.get("/api/v1/orgs/{org_id}/not-documented")
    async def not_documented(org_id: str) -> None:
        del org_id

    assert ("GET", "/api/v1/orgs/{org_id}/not-documented") in undocumented(
        app.openapi(), API_DOC.read_text()
    )


# Problem types


def _calls(tree: ast.AST, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == name:
                yield node


def _constant(node: ast.expr | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _subclasses(cls: type[DomainError]) -> Iterator[type[DomainError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def code_slugs() -> dict[str, set[int | None]]:
    """Every problem slug the control plane can answer with, and its statuses (None: any)."""
    found: dict[str, set[int | None]] = {}
    classes: list[type[DomainError]] = [DomainError, *_subclasses(DomainError)]
    for cls in classes:  # every subclass the app imports (control.main imports them all)
        found.setdefault(cls.slug, set()).add(cls.status)
    for status, (slug, _title) in problems.HTTP_SLUGS.items():
        found.setdefault(slug, set()).add(status)
    for path in sorted((ROOT / "control").rglob("*.py")):
        if path.relative_to(ROOT / "control").parts[0] == "web":
            continue  # the web app's sources and node_modules: no Python of ours
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree, "problem"):  # problem(request, status, slug, title, detail)
            args = {k.arg: k.value for k in call.keywords}
            slug = _constant(call.args[2] if len(call.args) > 2 else args.get("slug"))
            status = _constant(call.args[1] if len(call.args) > 1 else args.get("status"))
            if isinstance(slug, str):
                found.setdefault(slug, set()).add(status if isinstance(status, int) else None)
        for call in _calls(tree, "get"):  # HTTP_SLUGS.get(status, (fallback slug, title))
            owner = call.func.value if isinstance(call.func, ast.Attribute) else None
            if isinstance(owner, ast.Name) and owner.id == "HTTP_SLUGS" and len(call.args) == 2:
                fallback = call.args[1]
                if isinstance(fallback, ast.Tuple) and isinstance(_constant(fallback.elts[0]), str):
                    found.setdefault(_constant(fallback.elts[0]), set()).add(None)
    return found


def documented_problems(doc: str) -> dict[str, str]:
    """slug → the status cell of its row in the problem table."""
    return {slug: cell.strip() for slug, cell in PROBLEM_ROW.findall(doc)}


def problem_gaps(code: dict[str, set[int | None]], doc: str) -> list[str]:
    rows = documented_problems(doc)
    gaps = [f"{slug}: no row" for slug in sorted(code) if slug not in rows]
    for slug, statuses in sorted(code.items()):
        for status in sorted(s for s in statuses if s is not None):
            if slug in rows and str(status) not in rows[slug]:
                gaps.append(f"{slug}: status {status} not in its row ({rows[slug]!r})")
    return gaps


def test_every_problem_type_has_its_row_in_api_md() -> None:
    code = code_slugs()
    # Each way of finding slugs found something (else this test would be hollow).
    assert {"csrf-failed", "method-not-allowed", "internal-error", "http-error"} <= set(code)
    gaps = problem_gaps(code, API_DOC.read_text())
    assert not gaps, "docs/api.md, the problem types table:\n" + "\n".join(gaps)


def test_api_md_names_no_problem_type_the_code_cannot_produce() -> None:
    stale = set(PROBLEM.findall(API_DOC.read_text())) - set(code_slugs())
    assert not stale, f"docs/api.md names problem types nothing produces: {sorted(stale)}"


def test_a_new_problem_type_would_be_caught() -> None:
    code = code_slugs() | {"brand-new": {418}}
    assert "brand-new: no row" in problem_gaps(code, API_DOC.read_text())


# Roles


def test_role_table_is_roles_py() -> None:
    header, rows = table(CONTROL_DOC.read_text(), "| permission | least role |")
    ranked = [role.value for role in sorted(Role, key=lambda r: r.rank)]
    assert header == ["permission", "least role", *ranked, "service-account token"]
    by_name = {row[0].strip("`"): row[1:] for row in rows}
    assert len(by_name) == len(rows), "a permission has two rows"
    assert set(by_name) == {p.value for p in Permission}, "rows ≠ control/auth/roles.py"
    for permission in Permission:
        least, *by_role, service = by_name[permission.value]
        expected = ["yes" if allows(Role(r), permission) else "no" for r in ranked]
        assert least == LEAST_ROLE[permission].value, permission
        assert by_role == expected, permission
        assert (service == "never") == (permission in HUMAN_ONLY), permission


# Settings


def iso_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size, prefix in (("D", 86400, "P"), ("H", 3600, "PT"), ("M", 60, "PT")):
        if seconds % size == 0:
            return f"{prefix}{seconds // size}{unit}"
    return f"PT{seconds}S"


def rendered(value: Any) -> str:
    """A default as the settings table writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{iso_duration(value)}`"
    if isinstance(value, tuple | list):
        return f"`{list(value)}`"
    assert not isinstance(value, SecretStr), "a secret has no default"
    return f"`{value}`"


def settings_fields() -> dict[str, tuple[str, Any]]:
    """name → (environment variable, default); nested models as `outer.inner`."""
    fields: dict[str, tuple[str, Any]] = {}
    for name, field in Settings.model_fields.items():
        env = f"KOKOA_{name.upper()}"
        if isinstance(field.default, BaseModel):
            for inner, sub in type(field.default).model_fields.items():
                fields[f"{name}.{inner}"] = (f"{env}__{inner.upper()}", sub.default)
        else:
            fields[name] = (env, field.default)
    return fields


def test_every_setting_has_its_row_in_control_plane_md() -> None:
    fields = settings_fields()
    assert "password_hash.memory_cost" in fields and "secret_key" in fields
    header, cells = table(CONTROL_DOC.read_text(), "| setting | environment variable |")
    assert header[:3] == ["setting", "environment variable", "default"]
    rows = {row[0].strip("`"): (row[1].strip("`"), row[2]) for row in cells}
    assert len(rows) == len(cells), "a setting has two rows"
    gaps = [name for name in fields if name not in rows]
    assert not gaps, f"add to the settings table of docs/control-plane.md: {gaps}"
    stale = set(rows) - set(fields)
    assert not stale, f"docs/control-plane.md documents settings that do not exist: {stale}"
    for name, (env, default) in fields.items():
        assert rows[name][0] == env, name
        assert rendered(default) in rows[name][1], f"{name}: default {rendered(default)}"


def test_the_refused_default_secrets_are_listed() -> None:
    doc = CONTROL_DOC.read_text()
    missing = [s for s in sorted(KNOWN_DEFAULT_SECRETS) if s and f"`{s}`" not in doc]
    assert not missing, f"docs/control-plane.md, production refusals: {missing}"
