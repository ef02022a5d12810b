"""Users' own data: files, folders of splits, any hub dataset, and formatters defined in TOML.

Four forms, all balanced, id'd and split exactly as registry datasets are:

* a file ``reviews.jsonl`` (or ``.json/.csv/.parquet``): one pool, test carved from it;
* a folder with ``train.*``, ``validation.*`` (or ``val.*``/``dev.*``) and ``test.*`` files:
  the user's splits are kept (test from test, train pool from train, val from validation);
* ``hub:org/name[:config]``: a hub dataset's train/validation/test splits, read as the folder;
* a ``[datasets.NAME]`` table in ``w2sprobe.toml``: ``source`` (any of the above), ``template``
  (``"Premise: {premise}\\nHypothesis: {hypothesis}"``), ``label`` field and ``positive`` value;
  ``define_dataset`` registers it so ``load_splits("NAME")`` works.

Labels: a binary field (bools, 0/1, "0"/"1"), or any field with a ``positive_label``: that value
is 1, every other 0 (one vs rest; ClassLabel names such as ag_news "Business" work too).  Label
values are checked on the Arrow column before any row is formatted, so bad input fails fast.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .formatters import Formatter
from .hub import HubSource, load_with_fallback
from .registry import REGISTRY, _alias_key
from .rows import RowSource, as_source
from .sources import (
    USER_FILE_LOADERS,
    Pools,
    bad_file_reason,
    binary_label,
    is_user_file,
    load_data_file,
)

HUB_PREFIX = "hub:"
#: Split role -> accepted file stems, in the order they are looked for.
SPLIT_STEMS = {"train": ("train",), "validation": ("validation", "val", "dev"), "test": ("test",)}
TABLE_KEYS = ("source", "template", "text", "label", "positive", "description")
#: Hub datasets mark unlabeled rows (e.g. GLUE test splits) with this label.
UNLABELED = -1


@dataclass(frozen=True)
class UserDatasetSpec:
    """A dataset defined by the user: where its rows are and how a row becomes an example."""

    name: str
    source: str
    template: str | None = None
    text_field: str = "text"
    label_field: str = "label"
    positive: str | None = None
    description: str = ""


_REGISTRY_KEYS = {_alias_key(name) for name in REGISTRY}

#: Names defined with ``define_dataset``, by exact name.
USER_DATASETS: dict[str, UserDatasetSpec] = {}


# --- what the dataset argument is ------------------------------------------------------------


def is_hub_source(dataset: str) -> bool:
    """Whether ``dataset`` is a ``hub:org/name[:config]`` source."""
    return str(dataset).startswith(HUB_PREFIX)


def is_user_data(dataset: str) -> bool:
    """Whether ``dataset`` names user data: a defined name, ``hub:...``, a folder or a file.

    A registry name wins over a folder of the same name in the working directory (``sst2``
    is the registry's; write ``./sst2`` for the folder).
    """
    dataset = str(dataset)
    if dataset in USER_DATASETS or is_hub_source(dataset):
        return True
    if _alias_key(dataset) in _REGISTRY_KEYS and not any(
        sep in dataset for sep in ("/", os.sep, ".")
    ):
        return False
    return Path(dataset).is_dir() or (is_user_file(dataset) and Path(dataset).is_file())


def parse_hub_source(dataset: str) -> tuple[str, str | None]:
    """``hub:org/name[:config]`` -> ``(org/name, config or None)``."""
    body = str(dataset)[len(HUB_PREFIX) :]
    repo, _, config = body.partition(":")
    if not repo or repo.count("/") > 1 or repo.startswith("/") or repo.endswith("/"):
        raise UsageError(
            f"'{dataset}' is not a hub source; write hub:org/name or hub:org/name:config"
        )
    return repo, config or None


# --- user-defined datasets ([datasets.NAME] tables) ------------------------------------------


def define_dataset(
    name: str, table: Mapping[str, Any], *, base_dir: str | os.PathLike | None = None
) -> UserDatasetSpec:
    """Register a ``[datasets.NAME]`` table (already parsed from TOML) and return its spec.

    Keys: ``source`` (file, folder, or ``hub:org/name[:config]``; a relative path is resolved
    against ``base_dir``, the config file's folder), ``template`` (``str.format`` fields are row
    fields; default: the ``text`` field), ``text`` (default ``text``), ``label`` (default
    ``label``), ``positive`` (the label value that is class 1; others are 0) and ``description``.
    """
    if _alias_key(name) in _REGISTRY_KEYS:
        raise UsageError(f"[datasets.{name}]: '{name}' is a registry dataset; choose another name")
    unknown = sorted(set(table) - set(TABLE_KEYS))
    if unknown:
        raise UsageError(
            f"[datasets.{name}]: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(TABLE_KEYS)}"
        )
    source = table.get("source")
    if not isinstance(source, str) or not source:
        raise UsageError(f"[datasets.{name}]: 'source' must be a file, a folder or hub:org/name")
    for key in ("template", "text", "label", "description"):
        if key in table and not isinstance(table[key], str):
            raise UsageError(f"[datasets.{name}]: '{key}' must be a string, got {table[key]!r}")
    template = table.get("template")
    if template is not None:
        template_fields(template, f"[datasets.{name}]")  # syntax errors now, not at load time
    if not is_hub_source(source) and base_dir is not None and not Path(source).is_absolute():
        source = str(Path(base_dir) / source)
    positive = table.get("positive")
    spec = UserDatasetSpec(
        name=name,
        source=source,
        template=template,
        text_field=table.get("text", "text"),
        label_field=table.get("label", "label"),
        positive=None if positive is None else str(positive),
        description=table.get("description", ""),
    )
    USER_DATASETS[name] = spec
    return spec


def define_datasets(
    tables: Mapping[str, Mapping[str, Any]], *, base_dir: str | os.PathLike | None = None
) -> list[UserDatasetSpec]:
    """Register every table of a parsed ``[datasets]`` TOML section; returns their specs."""
    if not isinstance(tables, Mapping):
        raise UsageError("[datasets] must be a table of [datasets.NAME] tables")
    specs = []
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise UsageError(f"[datasets.{name}] must be a table with at least 'source'")
        specs.append(define_dataset(name, table, base_dir=base_dir))
    return specs


def template_fields(template: str, where: str) -> list[str]:
    """The row fields a template names (``{premise}`` -> ``premise``)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"{where}: bad template {template!r} ({exc})") from None
    fields = []
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        base = field_name.split(".")[0].split("[")[0]
        if not base or base.isdigit():
            raise UsageError(
                f"{where}: template fields must be named, e.g. {{premise}}; got {{{field_name}}}"
            )
        fields.append(base)
    return fields


# --- formatters for user rows ----------------------------------------------------------------


class LabelMap:
    """Maps a label field's raw values to 0/1: binary values, or one value vs the rest."""

    def __init__(
        self,
        values: list[Any],
        where: str,
        field: str,
        positive: str | None = None,
        names: list[str] | None = None,
    ):
        self.field = field
        if positive is None:
            mapping = {value: binary_label(value) for value in values}
            bad = sorted({repr(v) for v, label in mapping.items() if label is None})
            if bad:
                raise UsageError(
                    f"labels of {where} are not binary: found values "
                    f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; pass "
                    "--positive-label VALUE for one class vs the rest"
                )
        else:
            mapping = {value: int(_matches(value, positive, names)) for value in values}
            if not any(mapping.values()):
                shown = sorted({_shown(v, names) for v in values})
                raise UsageError(
                    f"positive label {positive!r} does not occur in field '{field}' of "
                    f"{where}; values: {', '.join(shown[:10])}"
                    + (" ..." if len(shown) > 10 else "")
                )
        self.mapping = mapping

    def __call__(self, value: Any) -> int:
        return self.mapping[value]


class FieldFormatter:
    """``(row, rng) -> (row[text_field], label)``: a user file's text column as it is."""

    rng_free = True

    def __init__(self, text_field: str, labels: LabelMap):
        self.text_field, self.labels = text_field, labels
        self.__name__ = f"field:{text_field}"

    def __call__(self, row, rng):
        value = row[self.text_field]
        return ("" if value is None else str(value)), self.labels(row[self.labels.field])


class TemplateFormatter:
    """``(row, rng) -> (template.format(**row), label)``; a missing (null) field becomes ""."""

    rng_free = True

    def __init__(self, template: str, labels: LabelMap):
        self.template, self.labels = template, labels
        self.__name__ = "template"

    def __call__(self, row, rng):
        values = {key: ("" if value is None else value) for key, value in row.items()}
        return self.template.format_map(values), self.labels(row[self.labels.field])


# --- loading user data into pools ------------------------------------------------------------


@dataclass
class _Split:
    role: str
    rows: RowSource
    origin: str
    values: list[Any]
    class_names: dict[str, list[str]]
    names: list[str] | None = None  # the label field's ClassLabel names, if any
    path: Path | None = None  # the user's file it was read from


def user_pools(
    dataset: str,
    *,
    text_field: str = "text",
    label_field: str = "label",
    positive_label: str | None = None,
) -> tuple[str, Pools, Formatter]:
    """``(name, pools, formatter)`` for user data (see the module docstring for the forms)."""
    dataset = str(dataset)
    template = None
    if dataset in USER_DATASETS:
        spec = USER_DATASETS[dataset]
        name, location, template = spec.name, spec.source, spec.template
        text_field, label_field, positive_label = spec.text_field, spec.label_field, spec.positive
    else:
        name, location = dataset, dataset
    splits, source, notes = _read_splits(location, name)
    fields = template_fields(template, f"dataset {name}") if template else [text_field]
    for split in splits:
        _check_fields(split, fields + [label_field], template, name)
    splits = _drop_unlabeled(splits, notes)
    values = [value for split in splits for value in split.values]
    labels = LabelMap(
        list(dict.fromkeys(values)),
        _where(splits, source),
        label_field,
        positive_label,
        next((s.names for s in splits if s.names), None),
    )
    formatter: Formatter = (
        TemplateFormatter(template, labels) if template else FieldFormatter(text_field, labels)
    )
    by_role = {split.role: split for split in splits}
    pools = Pools(
        train=_rows(by_role.get("train")),
        test=_rows(by_role.get("test")),
        source=source,
        origin={
            split.role if split.role != "validation" else "val": split.origin for split in splits
        },
        val=_rows(by_role.get("validation")),
        notes=notes,
    )
    if pools.train is None or pools.test is None:
        only = by_role.get("test") or by_role.get("train")
        pools.origin["shared"] = only.origin
        if pools.train is not None:  # carve test out of train, as for a single file
            pools.test, pools.train = pools.train, None
    return name, pools, formatter


def _drop_unlabeled(splits: list[_Split], notes: list[str]) -> list[_Split]:
    """Hub test splits are often unlabeled (every label -1, as GLUE's): use the others."""
    kept = [s for s in splits if not (s.origin.startswith("hub split") and s.values == [UNLABELED])]
    for split in splits:
        if split not in kept:
            notes.append(f"{split.origin} is unlabeled (every label {UNLABELED}); not used")
    if not kept:
        raise UsageError(f"every split of {splits[0].origin} is unlabeled (label {UNLABELED})")
    return kept


def _rows(split: _Split | None) -> RowSource | None:
    return None if split is None else split.rows


def _where(splits: list[_Split], source: str) -> str:
    return splits[0].origin if len(splits) == 1 else source


def _read_splits(location: str, name: str) -> tuple[list[_Split], str, list[str]]:
    if is_hub_source(location):
        return _hub_splits(location, name)
    path = Path(location)
    if path.is_dir():
        return _folder_splits(path), f"folder {path}", []
    if is_user_file(location):
        if not path.is_file():
            raise UsageError(f"dataset file {path} does not exist")
        return [_file_split("test", path, f"file {path}")], f"file {path}", []
    if not path.exists():
        raise UsageError(
            f"dataset {name}: source {location} does not exist (a file, a folder or hub:org/name)"
        )
    raise UsageError(f"cannot read {path}: use a {', '.join(USER_FILE_LOADERS)} file or a folder")


def find_split_files(folder: Path) -> dict[str, Path]:
    """Split role -> file in ``folder``.

    Files are ``train.*``, ``validation.*``/``val.*``/``dev.*`` and ``test.*``.
    """
    found: dict[str, Path] = {}
    for role, stems in SPLIT_STEMS.items():
        matches = [
            path
            for stem in stems
            for suffix in USER_FILE_LOADERS
            if (path := folder / f"{stem}{suffix}").is_file()
        ]
        if len(matches) > 1:
            raise UsageError(
                f"folder {folder} has several {role} files ({', '.join(p.name for p in matches)}); "
                "keep one"
            )
        if matches:
            found[role] = matches[0]
    if not found:
        present = sorted(p.name for p in folder.iterdir())[:8]
        raise UsageError(
            f"folder {folder} has no recognisable split files: expected train.*, "
            f"validation.* and/or test.* ({', '.join(USER_FILE_LOADERS)}); found: "
            f"{', '.join(present) or 'nothing'}"
        )
    return found


def _folder_splits(folder: Path) -> list[_Split]:
    return [_file_split(role, path, path.name) for role, path in find_split_files(folder).items()]


def _file_split(role: str, path: Path, origin: str) -> _Split:
    dataset = load_data_file(USER_FILE_LOADERS[path.suffix.lower()], path)
    split = _split_of(role, dataset, origin)
    split.path = path
    return split


def _hub_splits(location: str, name: str) -> tuple[list[_Split], str, list[str]]:
    repo, config = parse_hub_source(location)
    loaded = load_with_fallback(HubSource(repo, config, ()), None, name)
    notes = [loaded.notice] if loaded.notice else []
    splits = []
    for role, stems in SPLIT_STEMS.items():
        stem = next((s for s in stems if s in loaded.data), None)
        if stem is None:
            continue
        splits.append(_split_of(role, loaded.data[stem], f"hub split {stem}"))
    if not splits:
        raise UsageError(
            f"dataset {name}: hub repo {repo} has no labeled train, validation or test "
            f"split (found: {', '.join(loaded.data) or 'none'})"
        )
    return splits, f"hub {loaded.source.describe()}", notes


def _split_of(role: str, dataset, origin: str) -> _Split:
    features = getattr(dataset, "features", None)
    return _Split(
        role,
        as_source(dataset, origin),
        origin,
        values=[],
        class_names=_class_names(features) if features else {},
    )


def _class_names(features) -> dict[str, list[str]]:
    """ClassLabel names per field (hub datasets), so ``--positive-label Business`` works."""
    return {
        field: list(feature.names)
        for field, feature in features.items()
        if getattr(feature, "names", None)
    }


def _check_fields(split: _Split, fields: list[str], template: str | None, name: str) -> None:
    """Every named field exists; the label column's distinct values are read from Arrow."""
    columns = split.rows.column_names
    *text_fields, label_field = fields
    for field in text_fields:
        if field not in columns and template:
            raise UsageError(
                f"dataset {name}: template {template!r} names field '{field}', but "
                f"{split.origin} has only: {', '.join(columns)}"
            )
    for field in (*text_fields, label_field):
        if field not in columns:
            raise UsageError(f"{split.origin} has no field '{field}'; fields: {', '.join(columns)}")
    for field in dict.fromkeys((*text_fields, label_field)):
        _check_column(split, field)
    split.values = _distinct(split.rows, label_field)
    split.names = split.class_names.get(label_field)


def _check_column(split: _Split, field: str) -> None:
    """A column of one type that decodes: a label column mixing numbers and text (datasets
    types it ``Json``) or invalid UTF-8 is one error naming the file, row and value."""
    table = getattr(split.rows, "table", None)
    if table is None:
        return
    import pyarrow as pa

    column = table.column(field)
    where = split.origin if split.path is None else f"file {split.path}"
    if "json" in str(column.type):  # values of several JSON types in one column
        _mixed_types(column, field, where)
    offset = 0
    for chunk in column.chunks:
        try:
            chunk.validate(full=True)
        except pa.ArrowInvalid:
            row = offset + _first_invalid(chunk)
            reason = bad_file_reason(split.path) if split.path is not None else ""
            if not reason.startswith("line"):  # no line to name: the row and field
                reason = f"field '{field}' of row {row + 1} is not valid UTF-8; save it as UTF-8"
            raise UsageError(f"{where}: {reason}") from None
        offset += len(chunk)


def _mixed_types(column, field: str, where: str) -> None:
    import json
    from collections import Counter

    values = [None if v is None else json.loads(v) for v in column.to_pylist()]
    kinds = [_json_kind(v) for v in values]
    common = Counter(k for k in kinds if k != "null").most_common(1)
    usual = common[0][0] if common else "null"
    row = next(i for i, kind in enumerate(kinds) if kind not in (usual, "null"))
    raise UsageError(
        f"{where}: field '{field}' mixes {usual}s and {kinds[row]}s: row {row + 1} has "
        f"{json.dumps(values[row])}; give every row one type (a label: 0/1, true/false, or "
        "one text per class with --positive-label)"
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list" if isinstance(value, list) else "object"


def _first_invalid(chunk) -> int:
    """Index of the first value of ``chunk`` that fails validation (on the error path only)."""
    low, high = 0, len(chunk)
    while high - low > 1:  # the first half holding a bad value
        middle = (low + high) // 2
        try:
            chunk.slice(low, middle - low).validate(full=True)
            low = middle
        except Exception:  # noqa: BLE001 - pyarrow.ArrowInvalid
            high = middle
    return low


def _distinct(rows: RowSource, field: str) -> list[Any]:
    """Distinct values of one column, in first-seen order (Arrow, no row dicts)."""
    table = getattr(rows, "table", None)
    if table is not None:
        import pyarrow.compute as pc

        return pc.unique(table.column(field)).to_pylist()
    return list(dict.fromkeys(row[field] for row in rows.take(range(len(rows)))))


def _matches(value: Any, positive: str, names: list[str] | None) -> bool:
    if value is None:
        return False
    if (
        names
        and isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value < len(names)
        and names[value] == positive
    ):
        return True
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) == positive or (
        isinstance(value, bool) and str(value).lower() == positive.lower()
    )


def _shown(value: Any, names: list[str] | None) -> str:
    if names and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return f"{value} ({names[value]})"
    return repr(value)
