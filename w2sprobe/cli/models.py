"""``w2sprobe models layers [MODEL]``: a model's layer structure, read from its config only."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..options import Options
from .common import emit_json, stdout
from .help import App
from .params import Control, options_command

app = App(
    help="Inspect models without loading their weights.",
    no_args_is_help=True,
)


@app.command("layers")
@options_command((), inert=("seed", "device", "cache_dir"))
def layers_command(
    opts: Options,
    ctl: Control,
    model: Annotated[
        Optional[str],
        typer.Argument(
            metavar="MODEL",
            help="An alias (minilm, mpnet, smollm2), a local HF folder or a hub id "
            "[default: the strong model, --strong]",
        ),
    ] = None,
) -> None:
    """Block count, hidden size, default pooling and probe layer, without a forward pass.

    Only the model's config is read (for an unconverted smollm2, its GGUF header): no weights
    load, so this is instant even for a hub model too big for this machine.
    """
    from ..models.assets import GGUF_NOTE
    from ..models.config import read_model_shape

    name = model or opts.model.strong_model
    shape = read_model_shape(name)
    # the packaged smollm2 is no original checkpoint: say so wherever its shape is shown
    note = GGUF_NOTE if name == "smollm2" else None
    if ctl.as_json:
        emit_json({"command": "models layers", **shape.to_dict(), "note": note})
        return
    info = shape.to_dict()
    for line in (
        f"{info['model']}: {info['model_type']} {info['kind']}, {info['num_blocks']} blocks, "
        f"hidden size {info['hidden_size']}",
        f"layers: {info['layers']} (0 = embeddings output, i = output of block i)",
        f"default pooling: {info['default_pooling']}",
        f"default probe layer: {info['default_probe_layer']} ((L + 1) // 2)",
        f"read from: {info['source']}",
        *([f"note: {note}"] if note else []),
    ):
        stdout.print(line, markup=False, highlight=False, soft_wrap=True)
