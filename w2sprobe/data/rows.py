"""Row sources: a split's rows, read in batches or by index, without one Python dict per row.

Big hub splits (amazon_polarity: 3.6M rows) arrive as Arrow tables, memory-mapped from the
datasets cache.  Turning them into a list of dicts costs gigabytes; a ``RowSource`` instead
hands out plain dicts only for the rows asked for: a batch at a time in storage order, or a
given set of indices.  Lists of dicts (tests, small user files) are sources too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, Union

import numpy as np

Row = dict[str, Any]
#: Rows per batch: large enough to amortise Arrow's per-call cost, small enough to stay ~MBs.
BATCH_ROWS = 4096


class RowSource(Protocol):
    """A split's rows: a length, rows by index, and a batched storage-order scan."""

    def __len__(self) -> int: ...

    def take(self, indices: Sequence[int] | np.ndarray) -> list[Row]: ...

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

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[Row]]:
        for start in range(0, len(self.rows), size):
            yield self.rows[start:start + size]

    @property
    def column_names(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []


class ArrowRows:
    """Rows of a ``pyarrow.Table`` (memory-mapped or in memory); dicts made per batch."""

    def __init__(self, table):
        self.table = table

    def __len__(self) -> int:
        return self.table.num_rows

    def take(self, indices) -> list[Row]:
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            return []
        # Sorted access touches each Arrow chunk once; the rows are put back in the asked order.
        order = np.argsort(indices, kind="stable")
        rows = self.table.take(indices[order]).to_pylist()
        out: list[Row] = [None] * len(indices)  # type: ignore[list-item]
        for position, row in zip(order.tolist(), rows):
            out[position] = row
        return out

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[Row]]:
        for batch in self.table.to_batches(max_chunksize=size):
            yield batch.to_pylist()

    @property
    def column_names(self) -> list[str]:
        return list(self.table.column_names)


Source = Union[ListRows, ArrowRows]


def as_source(rows: Any) -> RowSource:
    """Wrap a list of dicts, a ``pyarrow.Table`` or a ``datasets.Dataset`` as a ``RowSource``."""
    if isinstance(rows, (ListRows, ArrowRows)):
        return rows
    if isinstance(rows, list):
        return ListRows(rows)
    if hasattr(rows, "data") and hasattr(rows, "features"):  # datasets.Dataset
        if getattr(rows, "_indices", None) is not None:
            rows = rows.flatten_indices()
        return ArrowRows(rows.data.table)
    if hasattr(rows, "column_names") and hasattr(rows, "to_batches"):  # pyarrow.Table
        return ArrowRows(rows)
    raise TypeError(f"not a row source: {type(rows).__name__}")


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
