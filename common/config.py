"""Loading YAML configuration files into frozen pydantic models, with errors people can act on.

`load(path, Model)` returns a validated, immutable snapshot or raises `ConfigError` whose
message names the file, each failing field (as a dotted path) and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Frozen(BaseModel):
    """Base of every configuration model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ConfigError(Exception):
    """A configuration file could not be read or is invalid; `problems` lists (field, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {field}: {reason}" for field, reason in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse(data: object, model: type[M], *, source: str = "<config>") -> M:
    """Validate already-parsed data (e.g. from YAML) into `model`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [(_field(err["loc"]), err["msg"]) for err in exc.errors()]
        raise ConfigError(source, problems) from None


def load(path: Path, model: type[M], *, overlay: Mapping[str, object] | None = None) -> M:
    """Read a YAML file and validate it into `model`.

    `overlay` holds values that come from elsewhere (the enrollment with the control plane:
    identity and certificate paths), merged into the file's mapping; the file may leave them
    out or repeat them, but a different value is an error naming the field.

    Raises:
        ConfigError: the file is missing, is not YAML, contradicts `overlay`, or does not
            validate.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [("(file)", exc.strerror or str(exc))]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(source, [(where, f"not valid YAML: {exc}")]) from None
    if data is None:
        data = {}
    if overlay and isinstance(data, dict):
        problems: list[tuple[str, str]] = []
        data = _merge(data, overlay, (), problems)
        if problems:
            raise ConfigError(source, problems)
    return parse(data, model, source=source)


def _merge(
    data: dict[str, object],
    overlay: Mapping[str, object],
    where: tuple[str, ...],
    problems: list[tuple[str, str]],
) -> dict[str, object]:
    merged = dict(data)
    for key, value in overlay.items():
        field = (*where, key)
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merged[key] = _merge(current, value, field, problems)
        elif key in merged and current != value:
            problems.append(
                (".".join(field), f"comes from the enrollment ({value!r}); remove it from the file")
            )
        else:
            merged[key] = value
    return merged
