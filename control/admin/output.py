"""Printing answers: a compact table of the key columns (rich), or the API's JSON as it came.

Tables are for people: values are shortened (times to the second, in UTC; labels as k=v).
JSON is for programs: a list prints as one array of every item across all pages, anything
else exactly as the API returned it. Notes for people (hints, "deleted …") go to stderr, so
stdout holds only data in either format.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import typer

Format = Literal["table", "json"]
FORMATS: tuple[Format, ...] = ("table", "json")


def emit_list(items: list[Any], fmt: Format, columns: Sequence[str]) -> None:
    if fmt == "json":
        emit_json(items)
    else:
        _table([col.upper() for col in columns], [[_cell(i, c) for c in columns] for i in items])


def emit_one(item: Mapping[str, Any], fmt: Format) -> None:
    if fmt == "json":
        emit_json(item)
    else:
        _table(["FIELD", "VALUE"], [[key, _cell(item, key)] for key in item])


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def note(message: str) -> None:
    typer.echo(message, err=True)


def _cell(item: Mapping[str, Any], column: str) -> str:
    value = item.get(column)
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if column.endswith("_at") and isinstance(value, str):
        return value[:19].replace("T", " ")
    return str(value)


def _table(headers: list[str], rows: list[list[str]]) -> None:
    import io
    import shutil

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")  # kubectl-like, ASCII only
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(value) for value in row))  # Text: "[::1]" is not markup
    terminal = sys.stdout.isatty()
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=shutil.get_terminal_size().columns if terminal else 100_000,  # piped: no wrapping
        force_terminal=terminal,
        no_color=not terminal,
        highlight=False,
        emoji=False,
    )
    console.print(table)
    typer.echo("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()))
