"""Long waits that have no count to show (loading a model, unpacking a packaged one).

The library announces them on its logger, so that a front end can show a spinner and the
library never imports one: a record whose :data:`BUSY` attribute is ``"start"`` begins the
wait, ``"done"`` ends it (its message says how long it took) and ``"abort"`` ends it by an
error (no message worth showing).  Without a handler they are ordinary INFO records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: The ``extra`` attribute of a busy record: "start" | "done" | "abort".
BUSY = "w2sprobe_busy"


@contextmanager
def busy(log: logging.Logger, what: str) -> Iterator[None]:
    """``with busy(log, "loading model mpnet"):`` announces ``what ...`` then ``what: done in
    2.1 s`` (or an abort) on ``log``."""
    log.info("%s ...", what, extra={BUSY: "start"})
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        log.info("%s: failed", what, extra={BUSY: "abort"})
        raise
    log.info("%s: done in %.1f s", what, time.perf_counter() - started, extra={BUSY: "done"})
