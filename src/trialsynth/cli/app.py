"""The ``trialsynth`` command line (typer + rich): the app, its entry point, its errors.

Each command lives in its own module (``cli/fit.py``, ``cli/run.py``, ...) and registers
itself here; it parses, calls the workflow and renders (``cli/render.py``).

Exit codes (INTERFACE.md): 0 success; 2 bad input or arguments (a
:class:`~trialsynth.core.errors.TrialsynthError` or a usage error: one line on stderr);
3 a fit that failed its convergence checks under ``--strict``; 1 an internal error (a
bug: one line saying so and where the traceback was written; ``--debug`` prints it).
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main

from trialsynth.cli import (
    bias,
    cache,
    compare,
    cumulative,
    data,
    design,
    explore,
    fit,
    query,
    report,
    run,
    sensitivity,
)
from trialsynth.cli.options import EXIT_BAD_INPUT, EXIT_INTERNAL
from trialsynth.core.errors import TrialsynthError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Bayesian random-effects meta-analysis of randomised trials.",
)
for _module in (fit, run, query, design, sensitivity, report, compare, cumulative):
    _module.register(app)
app.add_typer(cache.cache_app, name="cache")
app.command(name="data")(data.data)
app.command(name="bias")(bias.bias)
app.command(name="explore")(explore.explore)
#: Whether ``--debug`` was given (set by the app's callback on every invocation).
_STATE = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    _STATE["debug"] = debug


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _usage_error(e: typer.TyperException) -> int:
    """A click usage error (unknown option, bad value, ...) as one line, exit 2."""
    # typer coerces values through pydantic, whose text of a ValueError starts "Value error, "
    message = e.format_message().replace(": Value error, ", ": ", 1)
    if not hasattr(e, "ctx"):  # not a usage error (e.g. a file click could not open)
        print(f"trialsynth: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not message:  # no arguments: help was printed
        return EXIT_BAD_INPUT
    ctx = e.ctx  # type: ignore[attr-defined]
    hint = f" (see '{ctx.command_path if ctx else 'trialsynth'} --help')"
    print(f"trialsynth: error: {message}{hint}", file=sys.stderr)
    return EXIT_BAD_INPUT


def crash_folder() -> Path:
    """Where tracebacks of internal errors go: ``crashes/`` in trialsynth's cache folder."""
    from trialsynth.engines.compile_cache import cache_root  # light; imported on a crash only

    return cache_root() / "crashes"


def write_traceback(exc: BaseException, argv: list[str] | None) -> Path | None:
    """The traceback of ``exc`` in a new file (cache folder, else temp folder), or None."""
    text = f"trialsynth {' '.join(argv if argv is not None else sys.argv[1:])}\n" + "".join(
        traceback.format_exception(exc)
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (crash_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"crash-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return Path(name)
        except OSError:  # not writable: try the next place
            continue
    return None


def _internal_error(exc: Exception, argv: list[str] | None) -> int:
    """A bug: one line saying so and where the traceback is, exit 1."""
    if _STATE["debug"]:
        traceback.print_exception(exc, file=sys.stderr)
    where = write_traceback(exc, argv)
    told = f"traceback in {where}" if where else "the traceback could not be written"
    print(
        f"trialsynth: internal error (a bug, not your input): {type(exc).__name__}: "
        f"{_first_line(exc)}; {told}" + ("" if _STATE["debug"] else "; --debug prints it"),
        file=sys.stderr,
    )
    return EXIT_INTERNAL


@functools.cache
def command() -> Any:
    """The click command typer builds from :data:`app`, built once a process.

    ``app(...)`` would build it again from every command's signature on each call (13 ms
    a call, 4 s of the test suite's in-process CLI calls); a click command holds no state
    between invocations, so one serves them all.
    """
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn errors into one line and an exit code."""
    _STATE["debug"] = False
    try:
        rv = command().main(args=argv, prog_name="trialsynth", standalone_mode=False)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        print("trialsynth: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # click's usage errors (typer's vendored click)
        return _usage_error(e)
    except TrialsynthError as e:  # the user's input: data, options, specs, files
        if _STATE["debug"]:
            traceback.print_exception(e, file=sys.stderr)
        print(f"trialsynth: error: {_first_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # anything else is a bug, never reported as bad input
        return _internal_error(e, argv)
    return rv if isinstance(rv, int) else 0


#: Full garbage collections run after this many generation-1 collections (Python: 10). A
#: command imports ~400 000 long-lived objects (PyMC, PyTensor, numba) and every full
#: collection scans them all: at the default, 7 of them took 0.8 s of a warm ``fit`` to
#: free a few thousand objects (peak RSS 466 -> 469 MB at 100).
FULL_COLLECTION_EVERY = 100


def console() -> None:
    """The ``trialsynth`` command: :func:`main`, then exit with its code.

    Full collections are made rarer for the command's run (:data:`FULL_COLLECTION_EVERY`),
    and before the interpreter's teardown the live objects are frozen out of the collector:
    its last full collection would otherwise traverse the objects that PyMC, PyTensor and
    numba leave (1.1-1.4 s after a fit, measured; 0.1 s frozen). Atexit handlers, thread
    joins and stream flushes still run as usual; memory is freed by the OS.
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
