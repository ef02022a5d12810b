"""Reaching the Hugging Face hub, or going to its local cache at once when it cannot be reached.

huggingface_hub retries a refused or unresolvable connection five times with back-off
(1 + 2 + 4 + 8 + 8 = 23 s) and logs every retry, so on a machine without a route to the hub (a
cluster's compute node, an air-gapped box) each hub id cost 23 s and ten lines of warnings before
our one error line. One TCP connect to the endpoint (at most ``CONNECT_TIMEOUT_S``, once per
process) answers first; when it fails, the hub call runs in the libraries' own offline mode,
which reads the local hub cache (a model or dataset fetched earlier still loads) and fails at
once when the files are not there.
"""

from __future__ import annotations

import functools
import logging
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 3.0
#: The phrase every "not in the cache and no hub" error carries, so callers can say it the same way.
UNREACHABLE = "the hub is unreachable from here and the local hub cache lacks it"

log = logging.getLogger("w2sprobe")


@functools.cache
def hub_reachable(endpoint: str) -> bool:
    """Whether a TCP connection to ``endpoint``'s host opens within ``CONNECT_TIMEOUT_S``."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        log.debug(f"{parts.hostname}:{port} is unreachable: using the local hub cache only")
        return False


@contextmanager
def offline_unless_reachable() -> Iterator[bool]:
    """Run the body in offline mode when the hub cannot be reached; yields whether it is offline.

    Offline mode is the module flag huggingface_hub and datasets read at each call (the same
    switch as ``HF_HUB_OFFLINE=1``), restored on exit; the reachability answer is memoised, so
    only the first hub call of a process pays for the check.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        yield True
        return
    if hub_reachable(constants.ENDPOINT):
        yield False
        return
    # datasets keeps its own copy of the flag, taken at import; patch it only if it is loaded
    # (a model lookup never imports datasets, and importing it here would cost seconds).
    flags = [constants]
    if "datasets.config" in sys.modules:
        flags.append(sys.modules["datasets.config"])
    saved = [module.HF_HUB_OFFLINE for module in flags]
    for module in flags:
        module.HF_HUB_OFFLINE = True
    try:
        yield True
    finally:
        for module, value in zip(flags, saved):
            module.HF_HUB_OFFLINE = value


#: huggingface_hub's "offline and not cached" errors; datasets quotes the name in its message.
_UNREACHABLE_ERRORS = ("OfflineModeIsEnabled", "LocalEntryNotFoundError")


def is_unreachable_error(exc: BaseException) -> bool:
    """Whether ``exc`` is huggingface_hub's "offline, not cached" failure (via datasets too)."""
    return type(exc).__name__ in _UNREACHABLE_ERRORS or any(
        name in str(exc) for name in _UNREACHABLE_ERRORS
    )
