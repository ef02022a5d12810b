"""The ``w2sprobe`` entry point: one sub-command group per module.

Bad input prints ``error: ...`` and exits 2.

Command modules import heavy libraries (torch, transformers, nnsight, datasets) only inside the
command that needs them, so ``--help``, ``data list``, ``cache ls`` and ``config show`` are instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import DiskFull, UsageError
from . import apply as apply_cmd
from . import cache as cache_cmd
from . import config_cmd, data, extract, models, probe, report, run, train, view
from .help import App

app = App(
    name="w2sprobe",
    help="Weak-to-strong generalization research on cached activations.",
    no_args_is_help=True,
    # --install-completion / --show-completion: bash, zsh, fish, PowerShell
    add_completion=True,
)
app.add_typer(data.app, name="data")
app.command("extract")(extract.extract)
app.command("train")(train.train)
for command in (probe.probe, probe.filter, probe.relabel, probe.sweep):
    app.command(command.__name__)(command)
app.command("apply")(apply_cmd.apply)
app.command("run")(run.run)
app.command("report")(report.report)
app.command("view")(view.view)
app.add_typer(cache_cmd.app, name="cache")
app.add_typer(config_cmd.app, name="config")
app.add_typer(models.app, name="models")


def _version(value: bool) -> None:
    """``--version``: the installed distribution's version (what pip sees), then exit 0."""
    if value:
        print(f"w2sprobe {installed_version()}")
        raise typer.Exit()


def installed_version() -> str:
    """The installed w2sprobe's version, or the package's own when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version("w2sprobe")
    except metadata.PackageNotFoundError:  # run from a source tree without pip install
        from .. import __version__

        return __version__


@app.callback()
def _top(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Weak-to-strong generalization research on cached activations."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every kind of bad input, and a full disk, ends as one ``error:`` line and
    exit code 2."""
    import click
    from typer import exceptions as typer_errors

    from ..runs import record_command

    record_command(sys.argv[1:] if argv is None else list(argv))  # into every run manifest
    try:
        # Without standalone mode click returns (not raises) the code of typer.Exit.
        code = app(args=argv, prog_name="w2sprobe", standalone_mode=False)
    except (UsageError, DiskFull) as exc:
        _fail(str(exc))
    except OSError as exc:  # a full disk at a write no writer wrapped: still one line
        from ..atomic import disk_full, is_disk_full

        if not is_disk_full(exc):
            raise
        if exc.filename:
            _fail(str(disk_full(Path(exc.filename))))
        _fail(f"no space left on device ({exc.strerror or exc}); free some space and run again")
    except (click.exceptions.Abort, typer.Abort):
        _fail("interrupted", code=130)
    except (click.exceptions.Exit, typer.Exit) as exc:
        sys.exit(exc.exit_code)
    except (click.ClickException, typer_errors.TyperException) as exc:
        # typer >= 0.26 vendors click, so its usage errors are not click's classes.
        _usage_error(exc)
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
    finally:
        record_command(None)  # a library call after an in-process CLI call is not that command
    if isinstance(code, int) and code:
        sys.exit(code)


def _usage_error(exc: Exception) -> None:
    """A bad option or argument: its one-line message (a bare command group already showed help)."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        context = getattr(exc, "ctx", None)
        if context is not None:
            print(context.get_help())
        sys.exit(2)
    format_message = getattr(exc, "format_message", None)
    _fail(format_message() if format_message else str(exc))


def _fail(message: str, code: int = 2) -> None:
    first_line = " ".join(message.strip().split())
    print(f"error: {first_line}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
