"""The ``--tokens`` spec (``last:K`` or ``A:B``): which tokens of each example a token-level
file holds (:mod:`.tokens`).  Apart from torch, so ``cache verify`` reads it without loading
the model stack."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

_SPEC = re.compile(r"^(?:last:(?P<last>\d+)|(?P<start>\d+):(?P<stop>\d+))$")


@dataclass(frozen=True)
class TokenSpec:
    """Which tokens of each example: the last ``slots`` (``start`` None) or positions
    ``start .. start + slots - 1``."""

    slots: int
    start: int | None = None

    @property
    def text(self) -> str:
        if self.start is None:
            return f"last:{self.slots}"
        return f"{self.start}:{self.start + self.slots}"


def parse_token_spec(text: str) -> TokenSpec:
    """``last:K`` or ``A:B`` (0 <= A < B) -> a :class:`TokenSpec`; anything else a UsageError."""
    match = _SPEC.match(text.strip())
    if match is None:
        raise UsageError(
            f"bad --tokens '{text}'; use last:K (the last K tokens) or A:B (positions A..B-1)"
        )
    if match["last"] is not None:
        slots, start = int(match["last"]), None
    else:
        start, slots = int(match["start"]), int(match["stop"]) - int(match["start"])
    if slots <= 0:
        raise UsageError(f"bad --tokens '{text}': it selects no token")
    return TokenSpec(slots, start)
