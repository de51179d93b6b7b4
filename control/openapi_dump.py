"""`python -m control.openapi_dump DIR`: the contract the web app is generated from.

Writes `DIR/openapi.json` (the control plane's OpenAPI document, from the FastAPI app itself:
no server, no database) and `DIR/roles.json` (the role order and which role each permission
needs, from control/auth/roles.py), so the TypeScript client and the UI's permission checks
come from the Python source and `./dev test` can tell when they are stale (docs/web.md).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from control.auth.roles import HUMAN_ONLY, LEAST_ROLE, MAX_SERVICE_ROLE, Role


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of an app built with throwaway development settings."""
    from control.main import create_app
    from control.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mode="development", data_dir=Path(tmp), config_file=None)
        return create_app(settings).openapi()


def role_table() -> dict[str, Any]:
    return {
        "roles": [role.value for role in sorted(Role, key=lambda r: r.rank)],
        "least_role": {p.value: r.value for p, r in sorted(LEAST_ROLE.items())},
        "human_only": sorted(p.value for p in HUMAN_ONLY),
        "max_service_role": MAX_SERVICE_ROLE.value,
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m control.openapi_dump DIR\n")
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "openapi.json", openapi_document())
    _write(out / "roles.json", role_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
