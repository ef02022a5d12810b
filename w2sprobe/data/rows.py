"""Row sources: a split's rows, read in batches or by index, without one Python dict per row.

Big hub splits (amazon_polarity: 3.6M rows) arrive as Arrow tables, memory-mapped from the
datasets cache.  Turning them into a list of dicts costs gigabytes; a ``RowSource`` instead
hands out plain dicts only for the rows asked for: a batch at a time in storage order, or a
given set of indices.  Lists of dicts (tests, small user files) are sources too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError

Row = dict[str, Any]
#: Rows per batch: large enough to amortise Arrow's per-call cost, small enough to stay ~MBs.
BATCH_ROWS = 4096


class RowSource(Protocol):
    """A split's rows: a length, rows by index, and a batched storage-order scan.

    ``take`` is random access (cheap per row; for reads in shuffled order); ``gather`` fetches
    a set of rows scattered over a big source in one sequential pass (bounded memory).
    """

    def __len__(self) -> int: ...

    def take(self, indices: Sequence[int] | np.ndarray) -> list[Row]: ...

    def gather(self, indices: Sequence[int] | np.ndarray) -> list[Row]: ...

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[Row]]: ...

    @property
    def column_names(self) -> list[str]: ...


class ListRows:
    """Rows already in memory as dicts."""

    def __init__(self, rows: list[Row]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, indices) -> list[Row]:
        return [self.rows[i] for i in np.asarray(indices, dtype=np.int64)]

    gather = take

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[Row]]:
        for start in range(0, len(self.rows), size):
            yield self.rows[start : start + size]

    @property
    def column_names(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []


class ArrowRows:
    """Rows of a ``pyarrow.Table`` (memory-mapped or in memory); dicts made per batch.

    ``files`` are the Arrow stream files the table is memory-mapped from (a datasets cache).
    A full scan reads those with plain file reads instead of through the mapping: every mapped
    page a scan touches stays resident in this process (a 3.6M-row split is ~1.5 GiB of RSS),
    while a read buffer is freed batch by batch.  ``take`` still uses the mapping: it touches
    only the pages of the rows asked for.
    """

    def __init__(self, table, files: Sequence[str] = (), origin: str | None = None):
        self.table = table
        self.files = list(files)
        self.origin = origin  # where the rows come from ("file x.jsonl"), for error messages
        self._index = None

    def __len__(self) -> int:
        return self.table.num_rows

    def take(self, indices) -> list[Row]:
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            return []
        # Per record batch, not ``Table.take``: that concatenates every chunk of a column first,
        # which copies (and pages in) the whole split to fetch a few thousand rows.
        order = np.argsort(indices, kind="stable")
        ordered = indices[order]
        batches, starts = self._batches_and_starts()
        which = np.searchsorted(starts, ordered, side="right") - 1
        cuts = np.flatnonzero(np.diff(which)) + 1
        rows: list[Row] = []
        for group in np.split(np.arange(len(ordered)), cuts):
            batch = which[group[0]]
            picked = batches[batch].take(ordered[group] - starts[batch])
            rows.extend(self._dicts(picked, [int(i) for i in ordered[group]]))
        out: list[Row] = [None] * len(indices)  # type: ignore[list-item]
        for position, row in zip(order.tolist(), rows):
            out[position] = row
        return out

    def gather(self, indices) -> list[Row]:
        """Rows at ``indices`` (any order), read in one sequential pass over the stream files.

        Random access through the mapping would page in (and keep resident) the neighbourhood
        of every row: for 16k rows spread over 3M, most of the file.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if not self.files or len(indices) == 0:
            return self.take(indices)
        order = np.argsort(indices, kind="stable")
        ordered = indices[order]
        rows: list[Row] = []
        start = 0
        for batch in self._record_batches():
            lo, hi = np.searchsorted(ordered, [start, start + batch.num_rows])
            if hi > lo:
                picked = batch.take(ordered[lo:hi] - start)
                rows.extend(self._dicts(picked, [int(i) for i in ordered[lo:hi]]))
            start += batch.num_rows
        out: list[Row] = [None] * len(indices)  # type: ignore[list-item]
        for position, row in zip(order.tolist(), rows):
            out[position] = row
        return out

    def _batches_and_starts(self):
        if self._index is None:
            batches = self.table.to_batches()  # zero-copy views of the (mapped) chunks
            sizes = np.array([batch.num_rows for batch in batches], dtype=np.int64)
            self._index = (batches, np.concatenate([[0], np.cumsum(sizes)[:-1]]))
        return self._index

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[Row]]:
        offset = 0
        for batch in self._record_batches():
            for start in range(0, batch.num_rows, size):
                part = batch.slice(start, size)
                yield self._dicts(part, range(offset + start, offset + start + part.num_rows))
            offset += batch.num_rows

    def _dicts(self, batch, rows: Sequence[int]) -> list[Row]:
        """``batch.to_pylist()``; text that is not UTF-8 is one UsageError naming the row."""
        try:
            return batch.to_pylist()
        except UnicodeDecodeError:
            for position, row in enumerate(rows):
                try:
                    batch.slice(position, 1).to_pylist()
                except UnicodeDecodeError as exc:
                    raise UsageError(
                        f"{self.origin or 'the data'}: row {row + 1} is not valid UTF-8 "
                        f"({exc.reason} at byte {exc.start}); save the file as UTF-8"
                    ) from None
            raise

    def _record_batches(self):
        if not self.files:
            yield from self.table.to_batches()
            return
        import pyarrow as pa

        for path in self.files:
            with pa.OSFile(path) as handle:
                yield from pa.ipc.open_stream(handle)

    @property
    def column_names(self) -> list[str]:
        return list(self.table.column_names)


Source = ListRows | ArrowRows


def as_source(rows: Any, origin: str | None = None) -> RowSource:
    """Wrap a list of dicts, a ``pyarrow.Table`` or a ``datasets.Dataset`` as a ``RowSource``
    (``origin``: where its rows come from, named in errors about them)."""
    if isinstance(rows, (ListRows, ArrowRows)):
        return rows
    if isinstance(rows, list):
        return ListRows(rows)
    if hasattr(rows, "data") and hasattr(rows, "features"):  # datasets.Dataset
        if getattr(rows, "_indices", None) is not None:
            rows = rows.flatten_indices()
        files = [entry["filename"] for entry in rows.cache_files]
        covered = files if _streams_cover(files, rows.num_rows) else ()
        return ArrowRows(rows.data.table, covered, origin)
    if hasattr(rows, "column_names") and hasattr(rows, "to_batches"):  # pyarrow.Table
        return ArrowRows(rows, origin=origin)
    raise TypeError(f"not a row source: {type(rows).__name__}")


def _streams_cover(files: list[str], num_rows: int) -> bool:
    """Whether the cache files are Arrow streams holding exactly the dataset's rows, in order."""
    if not files:
        return False
    import pyarrow as pa

    try:
        total = 0
        for path in files:
            with pa.memory_map(path) as handle:  # reads only batch headers' lengths lazily
                total += sum(batch.num_rows for batch in pa.ipc.open_stream(handle))
        return total == num_rows
    except (OSError, pa.ArrowInvalid):
        return False


def concat(sources: list[RowSource]) -> RowSource:
    """The rows of several sources, in order (sciq pools its three hub splits)."""
    if all(isinstance(source, ArrowRows) for source in sources):
        import pyarrow as pa

        tables = [source.table for source in sources]  # type: ignore[attr-defined]
        return ArrowRows(pa.concat_tables(tables, promote_options="default"))
    return ListRows([row for source in sources for row in source.take(range(len(source)))])


def select(source: RowSource, indices) -> RowSource:
    """A source of the given rows of ``source``, in that order."""
    indices = np.asarray(indices, dtype=np.int64)
    if isinstance(source, ArrowRows):
        return ArrowRows(source.table.take(indices))
    return ListRows(source.take(indices))
