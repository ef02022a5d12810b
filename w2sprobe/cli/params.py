"""Command-line options generated from :mod:`w2sprobe.options`: one definition, every command.

``@options_command(...)`` turns a body ``def body(opts: Options, ctl: Control, **own)`` into a
typer command whose options are the named option fields (type, metavar, default and help taken
from the field), plus ``--config`` / ``--json`` and, where they apply, ``--preset``, ``--plan``
and ``--no-build``.  Values given on the command line are resolved with the config file,
environment, preset and defaults into a typed :class:`~w2sprobe.options.Options` before the
body runs, so every option is checked before any work starts.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer

from ..options import SPECS, OptionSpec, resolve
from .help import GENERAL, PANELS, completer
from .progress import configure as configure_output

METAVARS = {
    "int": "INTEGER",
    "float": "FLOAT",
    "str": "TEXT",
    "list_str": "TEXT",
    "list_int": "INTEGER",
}


@dataclass
class Control:
    """How a command runs, as opposed to what it computes."""

    as_json: bool = False
    plan: bool = False
    no_build: bool = False
    quiet: bool = False
    context: Any = None  # typer.Context: a torchrun launcher rebuilds the command line from it

    @property
    def mode(self) -> str:
        return "plan" if self.plan else ("no-build" if self.no_build else "build")


def option_parameter(
    spec: OptionSpec,
    hidden: bool = False,
    panel: str | None = None,
    doc: tuple[str, str] | None = None,
) -> inspect.Parameter:
    """The typer parameter of one option field, in the help section of its group (``panel``
    renames it for one command); ``doc`` = (text, default) where one command means another
    thing by it than the field's doc says.

    Its default is ``None``: "not given on the command line".
    """
    text, default = doc or (spec.doc, spec.default_text())
    help_text = f"{text} [default: {default}]"
    if spec.env:
        help_text += f" [env: {spec.env}]"
    kwargs: dict[str, Any] = {
        "help": help_text,
        "show_default": False,
        "hidden": hidden,
        "rich_help_panel": panel or PANELS[spec.group],
    }
    if spec.choices or spec.suggestions:
        kwargs["autocompletion"] = completer(spec.choices or spec.suggestions)
    if spec.kind == "bool":
        name = spec.flag.removeprefix("--")
        decls = [f"--{name}/--no-{name}"]
        annotation: Any = Optional[bool]
    else:
        decls = [spec.flag]
        kwargs["metavar"] = spec.metavar or (
            "[" + "|".join(spec.choices) + "]" if spec.choices else METAVARS[spec.kind]
        )
        annotation = Optional[list[str]] if spec.kind.startswith("list") else Optional[str]
    return inspect.Parameter(
        spec.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[annotation, typer.Option(*decls, **kwargs)],
    )


def _flag(name: str, flag: str, help_text: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, typer.Option(flag, help=help_text, rich_help_panel=GENERAL)],
    )


CONTROL_PARAMETERS = {
    "config": inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Optional[str],
            typer.Option(
                "--config",
                metavar="FILE",
                help="Config file of option values [default: the nearest w2sprobe.toml in the "
                "working folder or its parents]",
                rich_help_panel=GENERAL,
            ),
        ],
    ),
    "preset": inspect.Parameter(
        "preset",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Optional[str],
            typer.Option(
                "--preset",
                metavar="[demo|blog]",
                help="Named option set: demo (the "
                "defaults) or blog (the study's models, sizes and recipe).",
                rich_help_panel=GENERAL,
                autocompletion=completer(("demo", "blog")),
            ),
        ],
    ),
    "as_json": _flag(
        "as_json", "--json", "Print one JSON object summarising what was done on stdout."
    ),
    "quiet": _flag(
        "quiet", "--quiet", "No progress or notices on stderr (warnings and errors still show)."
    ),
    "plan": _flag("plan", "--plan", "List what would be built and what is cached; build nothing."),
    "no_build": _flag(
        "no_build", "--no-build", "Refuse instead of building missing prerequisites."
    ),
}

#: Options every command accepts (the design's contract); hidden where they change nothing.
WORKSPACE = ("cache_dir", "seed", "device")


def group(name: str, *, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The option fields of one concern (``data``, ``train``, ...), in declaration order."""
    return tuple(n for n, spec in SPECS.items() if spec.group == name and n not in without)


#: What every command that builds splits reads.
DATA = group("data")


def options_command(
    fields: tuple[str, ...],
    *,
    graph: bool = False,
    preset: bool = True,
    inert: tuple[str, ...] = (),
    panels: dict[str, str] | None = None,
    docs: dict[str, tuple[str, str]] | None = None,
) -> Callable:
    """Decorate ``body(opts, ctl, **own)`` into a typer command.

    ``fields``: the option fields this command uses (workspace options are always added);
    ``graph``: the command builds artifacts, so it gets ``--plan`` and ``--no-build``;
    ``preset``: it takes ``--preset``; ``inert``: workspace options it accepts but ignores
    (hidden from its help); ``panels``: group (or one option) -> its help section's title in
    this command (``train`` -> "Training of the weak model ..." where only a prerequisite
    trains); ``docs``: option -> (help, default) where this command uses an option in another
    sense than its doc.
    """
    panels, docs = panels or {}, docs or {}
    # Every command that builds artifacts can log them to a tracker.
    fields = (*fields, "tracker") if graph and "tracker" not in fields else fields
    names = [*WORKSPACE, *(f for f in fields if f not in WORKSPACE)]
    control = [
        "config",
        *(["preset"] if preset else []),
        "as_json",
        "quiet",
        *(["plan", "no_build"] if graph else []),
    ]

    def decorate(body: Callable) -> Callable:
        hints = typing.get_type_hints(
            body, include_extras=True
        )  # the body's module resolves its names
        own = [
            p.replace(annotation=hints[p.name])
            for p in inspect.signature(body).parameters.values()
            if p.name not in ("opts", "ctl")
        ]
        context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + [context]
        parameters += [
            option_parameter(
                SPECS[n], n in inert, panels.get(n) or panels.get(SPECS[n].group), docs.get(n)
            )
            for n in names
        ]
        parameters += [CONTROL_PARAMETERS[n] for n in control]

        @functools.wraps(body)
        def command(**kwargs: Any) -> Any:
            ctl = Control(
                as_json=kwargs.pop("as_json", False),
                plan=kwargs.pop("plan", False),
                no_build=kwargs.pop("no_build", False),
                quiet=kwargs.pop("quiet", False),
                context=kwargs.pop("ctx"),
            )
            configure_output(quiet=ctl.quiet)
            config, preset_name = kwargs.pop("config", None), kwargs.pop("preset", None)
            own_values = {p.name: kwargs.pop(p.name) for p in own}
            opts = resolve(kwargs, config, preset_name)
            return body(opts, ctl, **own_values)

        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        del command.__wrapped__  # typer must read the generated signature, not the body's
        return command

    return decorate


#: ``--launcher`` / ``--nproc``, the same for every command that can run data-parallel.
LauncherOpt = Annotated[
    Optional[str],
    typer.Option(
        "--launcher",
        metavar="[none|torchrun]",
        help="torchrun: run as --nproc data-parallel processes on this machine.",
        autocompletion=completer(("none", "torchrun")),
    ),
]
NprocOpt = Annotated[
    Optional[int],
    typer.Option(
        "--nproc",
        metavar="INTEGER",
        help="Processes for --launcher torchrun (on CUDA at most the visible GPUs).",
    ),
]
