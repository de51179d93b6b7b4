"""The `kokoa` console script: a root that runs each component's Typer app, imported lazily.

Components register themselves under the `kokoa.commands` entry-point group (see
pyproject.toml). Only the sub-app that the command line names is imported, so `kokoa edge
run` never loads FastAPI or SQLAlchemy, and `common` never imports the other packages.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

import typer

GROUP = "kokoa.commands"

USAGE = """\
Usage: kokoa COMMAND [ARGS]...

  Kokoa Proxy 2: publish apps behind NAT through ingress nodes, without opening a port.

Commands:
{commands}

Run `kokoa COMMAND --help` for a command's own help.
"""


def _commands() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _usage(commands: dict[str, EntryPoint]) -> str:
    return USAGE.format(commands="\n".join(f"  {name}" for name in sorted(commands)))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    commands = _commands()
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(_usage(commands))
        raise SystemExit(0 if args else 2)
    name, rest = args[0], args[1:]
    entry = commands.get(name)
    if entry is None:
        sys.stderr.write(f"kokoa: no such command {name!r}\n\n{_usage(commands)}")
        raise SystemExit(2)
    app = entry.load()
    if not isinstance(app, typer.Typer):
        raise TypeError(f"entry point {entry.value!r} is not a Typer app")
    app(args=rest, prog_name=f"kokoa {name}")


if __name__ == "__main__":
    main()
