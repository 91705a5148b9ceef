"""``trialsynth explore``: serve the local web explorer (parse, call, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialsynth.core.errors import TrialsynthError

DEFAULT_PORT = 8765


def explore(
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="[SPEC|DATA]",
            help="An analysis spec (.toml: its data, exclusions, model and priors start the "
            "page) or a data argument (CSV path or shipped dataset). Default: ivig_rm.",
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind. The default is this machine only; any other address is "
            "reachable from the network (a warning is printed)."
        ),
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser tab.")
    ] = False,
) -> None:
    """Serve an interactive page: change priors, drop trials, see the posterior at once."""
    try:  # the explorer's web stack is a dependency of the package, but say so if missing
        from trialsynth.explore.serve import serve
        from trialsynth.explore.service import explorer_for
    except ModuleNotFoundError as err:
        raise TrialsynthError(
            f"trialsynth explore needs {err.name}: pip install starlette uvicorn"
        ) from None

    if not 0 <= port <= 65535:
        raise TrialsynthError(f"--port: {port} is not a port number (0-65535)")
    explorer = explorer_for(source or "ivig_rm", is_spec=_is_spec(source))
    explorer.warm()
    serve(explorer, host=host, port=port, open_browser=not no_browser)


def _is_spec(source: str | None) -> bool:
    return source is not None and Path(source).suffix.lower() == ".toml"
