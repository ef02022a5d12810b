"""The one exception type that means "the user asked for something we cannot do".

And the one rule for quoting a library's exception inside such a one-line message.
"""


class UsageError(Exception):
    """Bad input: the CLI prints ``error: <message>`` and exits with code 2.

    Raise it with a message that names the offending value and, where possible,
    what would have been accepted.  Never raise it after touching cached files.
    """


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type name when empty: one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class DiskFull(Exception):
    """No space left (``ENOSPC``, or a quota: ``EDQUOT``) while writing ``path``.

    The CLI prints it as one ``error:`` line and exits 2.  Raised by the writers after they
    removed their temporary files; what was complete before stays complete, and a partial
    activation file stays resumable, so the same command with space again picks up.
    """

    def __init__(self, path, needed: int | None = None, free: int | None = None):
        super().__init__(path, needed, free)
        self.path, self.needed, self.free = path, needed, free

    def __str__(self) -> str:
        parts = []
        if self.needed is not None:
            parts.append(f"{human_bytes(self.needed)} needed")
        if self.free is not None:
            parts.append(f"{human_bytes(self.free)} free there")
        detail = f" ({', '.join(parts)})" if parts else ""
        return (
            f"no space left on device while writing {self.path}{detail}; free some space and "
            "run the same command again"
        )


def human_bytes(size: int) -> str:
    """``512 B``, ``12.3 KiB``, ``1.5 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns
