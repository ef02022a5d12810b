"""Layers, in one place: numbering, parsing a layer spec, the default probe layer.

Numbering is Hugging Face's ``hidden_states``: layer 0 = the embeddings output, layer i = the
output of block i, so a model with L blocks has layers 0..L.  In a spec, ``all`` means every
layer *of the model* when extracting, and every *cached* layer when probing or sweeping (the
probes never run the model).

The probe layer (``--layer``) is a number, the reference's default ``(L + 1) // 2``, or
:data:`AUTO_LAYER`: chosen among the *extracted* layers by the probe's weak-label criterion on
strong_train (kNN's leave-one-out Brier score, every other probe's k-fold cross-validated
cross-entropy, against the labels it is fit on) -- never ground truth, never test.  The
criterion and the rule that picks (least criterion, ties to the lower layer) are
:mod:`w2sprobe.probes.auto` and :mod:`w2sprobe.probes.choice`, the ones ``--k auto`` and
``sweep`` use; :meth:`w2sprobe.study.Study.fit_layer` applies them.
"""

from __future__ import annotations

from .errors import UsageError

#: ``--layer auto``: the probe layer chosen without ground truth (module doc).
AUTO_LAYER = "auto"


def default_probe_layer(num_layers: int) -> int:
    """The reference study's probe layer: ``(L + 1) // 2`` (16 for Llama-3-8B's 32 blocks)."""
    return (num_layers + 1) // 2


def parse_layer_spec(
    spec: str | int | list, available: list[int], num_layers: int, model: str = "this model"
) -> list[int]:
    """``all`` / ``4,8,16`` / ``[16]`` -> sorted layers; ``all`` = ``available``.

    Every layer is checked against 0..L of the model, with a message that says how many blocks
    it has and how the numbering goes, so ``--layer 16`` on a 12-block model explains itself.
    """
    items = spec if isinstance(spec, list) else str(spec).split(",")
    layers: set[int] = set()
    for item in (str(i).strip().lower() for i in items if str(i).strip()):
        if item == "all":
            layers.update(available)
        elif item.lstrip("-").isdigit():
            layers.add(int(item))
        else:
            raise UsageError(f"layers must be 'all' or integers like 4,8,16; got '{item}'")
    bad = [layer for layer in sorted(layers) if not 0 <= layer <= num_layers]
    if bad:
        raise UsageError(layer_range_message(bad[0], num_layers, model))
    return sorted(layers)


def layer_range_message(layer: int, num_layers: int, model: str) -> str:
    return (
        f"layer {layer} is outside 0..{num_layers} for {model} ({num_layers} blocks; layer 0 = "
        f"embeddings, layer i = output of block i); set --layer (or layer/layers in w2sprobe.toml) "
        f"within 0..{num_layers}, or use a deeper strong_model such as smollm2 (30 blocks)"
    )
