"""The one exception type that means "the user asked for something we cannot do"."""


class UsageError(Exception):
    """Bad input: the CLI prints ``error: <message>`` and exits with code 2.

    Raise it with a message that names the offending value and, where possible,
    what would have been accepted.  Never raise it after touching cached files.
    """
