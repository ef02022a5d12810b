"""``--launcher torchrun --nproc N``: re-execute this very command as N data-parallel workers."""

from __future__ import annotations

import typer


def relaunch_under_torchrun(ctx: typer.Context, nproc: int) -> None:
    """Exec this command line through torchrun (exits with torchrun's status)."""
    from ..distributed import launch_torchrun

    raise typer.Exit(launch_torchrun(nproc, worker_argv(ctx, drop=("launcher", "nproc"))))


def worker_argv(ctx: typer.Context, drop: tuple[str, ...]) -> list[str]:
    """This command line as torchrun workers get it: what the user typed, minus ``drop``.

    Options from the config file or environment are not repeated: the workers read them the
    same way.
    """
    argv = [ctx.info_name]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in drop or source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        if param.param_type_name == "argument":
            argv.append(str(value))
        elif getattr(param, "is_flag", False):
            if param.secondary_opts:
                argv.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                argv.append(param.opts[0])
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [param.opts[0], str(item)]
        else:
            argv += [param.opts[0], str(value)]
    return argv
