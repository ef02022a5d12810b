"""Help as a researcher reads it: options in their groups, plain text, printed at once.

Every option field carries its group (``rich_help_panel``: Workspace, Data, Models,
Extraction, Probes, Training, Study plan, Report); a command's own options come first under
"Options" and the switches every command shares (``--config``, ``--json``, ``--help``, ...)
last under "General".  The help is click's plain formatter with one section per group — no
rich rendering, so ``--help`` stays instant and reads the same in a terminal, a pipe or a log —
and arguments show their metavar only (``KEY...``, never a Python type).  Command summaries
in a group's listing are the whole first sentence, wrapped, never cut with ``...``.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

#: Section of a command's own options, and of the switches every command shares.
OWN, GENERAL = "Options", "General"
#: The help section of each option group, in the order help lists them.
PANELS = {
    "workspace": "Workspace",
    "data": "Data",
    "model": "Models",
    "extract": "Extraction",
    "probe": "Probes",
    "train": "Training",
    "run": "Study plan",
    "report": "Report",
}


def _sections(command, ctx) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, rows) in order: arguments, the command's own options, each option group in
    the order its first option appears, the shared switches."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            title, record = "Arguments", _argument_record(param)
        else:
            record = param.get_help_record(ctx)
            if record is None:
                continue
            panel = getattr(param, "rich_help_panel", None)
            title = panel or (GENERAL if param.name == "help" else OWN)
        sections.setdefault(title, []).append(record)
    if OWN in sections and len(sections.get(GENERAL, [])) == 1:  # a group: only --help
        sections[OWN] += sections.pop(GENERAL)
    first = [t for t in ("Arguments", OWN) if t in sections]
    last = [GENERAL] if GENERAL in sections else []
    middle = sorted((t for t in sections if t not in (*first, *last)), key=_rank)
    return [(title, sections[title]) for title in (*first, *middle, *last)]


def _rank(title: str) -> int:
    """Position of a group's section (a renamed one, "Training of the weak model ...", sorts
    as the group it starts with; other titles last, in order of appearance)."""
    order = list(PANELS.values())
    return next((i for i, name in enumerate(order) if title.startswith(name)), len(order))


def _argument_name(param) -> str:
    return param.metavar or param.name.upper()


def _argument_record(param) -> tuple[str, str]:
    name = _argument_name(param) + ("..." if param.nargs != 1 else "")
    help_text = param.help or ""
    if param.required:
        help_text += "  [required]"
    return name, help_text.strip()


def _argument_usage(param) -> str:
    """``STAGE``, ``[NAME]``, ``KEY...``, ``[PATH]...``: required or not, one or many."""
    name = _argument_name(param)
    if not param.required:
        name = f"[{name}]"
    return name + ("..." if param.nargs != 1 else "")


def _write_sections(command, ctx, formatter) -> None:
    for title, rows in _sections(command, ctx):
        with formatter.section(title):
            formatter.write_dl(rows)


class _PlainHelp:
    """click's plain help layout (usage, text, sections, epilog), whatever typer's markup mode."""

    def format_help(self, ctx, formatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)


class GroupedCommand(_PlainHelp, TyperCommand):
    """A command whose help lists its options by group (see the module doc)."""

    def format_options(self, ctx, formatter) -> None:
        _write_sections(self, ctx, formatter)

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [
            _argument_usage(p)
            for p in self.get_params(ctx)
            if p.param_type_name == "argument" and not getattr(p, "hidden", False)
        ]


class GroupedGroup(_PlainHelp, TyperGroup):
    """A command group: its options by group, then every sub-command with its whole summary."""

    def format_options(self, ctx, formatter) -> None:
        _write_sections(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def summary(command) -> str:
    """The command's short help, or the first sentence of its help, whole."""
    if command.short_help:
        return command.short_help
    text = " ".join((command.help or "").split("\n\n")[0].split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


class App(typer.Typer):
    """``typer.Typer`` whose groups and commands print grouped, plain help (and ``-h``)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("cls", GroupedGroup)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("cls", GroupedCommand)
        return super().command(*args, **kwargs)


def completer(choices: tuple[str, ...]):
    """Shell completion of one of ``choices`` (``--install-completion`` sets the shell up)."""

    def complete(incomplete: str) -> list[str]:
        return [choice for choice in choices if choice.startswith(incomplete)]

    return complete
