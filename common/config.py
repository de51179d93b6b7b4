"""Loading YAML configuration files into frozen pydantic models, with errors people can act on.

`load(path, Model)` returns a validated, immutable snapshot or raises `ConfigError` whose
message names the file, each failing field (as a dotted path) and the reason.
"""

from __future__ import annotations

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


def load(path: Path, model: type[M]) -> M:
    """Read a YAML file and validate it into `model`.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not validate.
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
    return parse(data, model, source=source)
