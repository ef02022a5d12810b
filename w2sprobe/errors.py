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
