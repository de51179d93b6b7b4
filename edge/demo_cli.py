"""`kokoa demo …`: the demo origin that the local run and the end-to-end tests publish."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

app = typer.Typer(help="Demo applications to publish through Kokoa.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Demo applications to publish through Kokoa."""


@app.command()
def origin(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the demo origin (HTML page, /headers, /echo, /sha256, /bytes, /sse, /ws …)."""
    import uvicorn  # here, so that `kokoa demo --help` stays fast

    from edge.demo_server import server_config

    # uvicorn re-raises the SIGINT/SIGTERM it handled once it has shut down gracefully; by
    # then we are done, so the re-raised signal must not kill the process (exit status 0).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: None)
    uvicorn.Server(server_config(host, port, log_level=log_level)).run()
