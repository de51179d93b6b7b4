"""`kokoa control ca …`: show the CA, rotate it (stage, promote, retire), re-encrypt its key.

Mounted on `kokoa control` by control/cli.py. Every verb reads the same settings
as `kokoa control serve` (`--config`, `KOKOA_…`), since the CA key is encrypted with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import SecretStr

if TYPE_CHECKING:
    from control.runtime import Runtime

app = typer.Typer(help="The control plane's CA (docs/pki.md).", no_args_is_help=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="KOKOA_CONFIG_FILE", help="YAML settings file."),
]
T = TypeVar("T")


def _run(config: Path | None, work: Callable[[Runtime], Awaitable[T]]) -> T:
    from pydantic import ValidationError

    from control.ca import CaError
    from control.ca_rotation import RotationError
    from control.runtime import build_runtime
    from control.settings import Settings

    try:
        runtime = build_runtime(Settings(config_file=config))
    except ValidationError as exc:
        typer.echo(f"kokoa control ca: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None

    async def main() -> T:
        try:
            return await work(runtime)
        finally:
            await runtime.engine.dispose()

    try:
        return asyncio.run(main())
    except (RotationError, CaError) as exc:
        typer.echo(f"kokoa control ca: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("show")
def show_command(config: ConfigOption = None) -> None:
    """List the CAs: slot (current, next, previous or retired), fingerprint, validity."""
    from control.ca_rotation import show

    async def work(rt: Runtime) -> None:
        await rt.ca.authority()  # made on first use, like the server does
        async with rt.sessionmaker() as db:
            for info in await show(db):
                slot = info.slot or "retired"
                typer.echo(f"{slot:<9} {info.fingerprint}  until {info.not_after:%Y-%m-%d}")

    _run(config, work)


@app.command("stage")
def stage_command(config: ConfigOption = None) -> None:
    """Step 1: make the next CA; nodes and agents learn to trust it as they renew."""
    from control.ca_rotation import stage

    async def work(rt: Runtime) -> str:
        async with rt.sessionmaker() as db:
            return await stage(db, rt.settings, rt.ca.passphrase(), rt.now())

    fingerprint = _run(config, work)
    typer.echo(f"staged {fingerprint}; promote after one certificate lifetime")


@app.command("promote")
def promote_command(config: ConfigOption = None) -> None:
    """Step 2: the staged CA signs from now on; the old one stays trusted."""
    from control.ca_rotation import promote

    async def work(rt: Runtime) -> str:
        async with rt.sessionmaker() as db:
            return await promote(db, rt.now())

    typer.echo(f"promoted {_run(config, work)}; retire after one certificate lifetime")


@app.command("retire")
def retire_command(config: ConfigOption = None) -> None:
    """Step 3: stop trusting the previous CA."""
    from control.ca_rotation import retire

    async def work(rt: Runtime) -> str:
        async with rt.sessionmaker() as db:
            return await retire(db, rt.now())

    typer.echo(f"retired {_run(config, work)}")


@app.command("rekey")
def rekey_command(
    config: ConfigOption = None,
    old_is_secret_key: Annotated[
        bool,
        typer.Option(
            "--old-is-secret-key",
            help="Standard input holds the old secret_key (the passphrase was derived from "
            "it), not the old ca_key_passphrase.",
        ),
    ] = False,
) -> None:
    """Re-encrypt the CA keys with the passphrase of the current settings; the old passphrase
    (or secret key) is read from standard input."""
    import sys

    from control.ca import ca_passphrase
    from control.ca_rotation import rekey

    old_value = sys.stdin.readline().rstrip("\n")

    async def work(rt: Runtime) -> tuple[int, int]:
        field = "secret_key" if old_is_secret_key else "ca_key_passphrase"
        old_settings = rt.settings.model_copy(
            update={"ca_key_passphrase": None} | {field: SecretStr(old_value)}
        )
        async with rt.sessionmaker() as db:
            return await rekey(db, ca_passphrase(old_settings), rt.ca.passphrase())

    authorities, public = _run(config, work)
    typer.echo(f"re-encrypted {authorities} CA key(s) and {public} public certificate key(s)")


if __name__ == "__main__":
    app()
