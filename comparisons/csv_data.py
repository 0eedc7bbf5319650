"""Real data: a CSV file loaded with pandas into a Dataset, with one clear UsageError per bad input.

Row numbers in messages are line numbers in the file: the header is line 1, the first data row line 2.
"""
import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .data import Dataset
from .errors import UsageError


def load_csv(path, target, features=None):
    """The Dataset of `target` against `features` (default: every other numeric column) from a CSV file."""
    path = Path(path)
    raw = _read_bytes(path)
    text = _decode(path, raw)
    header = _header(path, text)
    frame = _parse(path, text, header)
    if target not in header:
        raise UsageError(f"{path}: no column {target!r} to use as --target; the columns are {_listing(header)}"
                         + _headerless_hint(header))
    numeric = [name for name in header if _looks_numeric(frame[name])]
    features = _choose_features(path, header, numeric, target, features)
    if len(frame) < 2:
        raise UsageError(f"{path}: has {len(frame)} data row{'s' * (len(frame) != 1)}; "
                         "a regression needs at least 2 rows, add more data")
    if len(frame) < len(features) + 1:
        raise UsageError(f"{path}: {len(frame)} rows cannot determine {len(features)} weights and a bias; "
                         f"use at least {len(features) + 1} rows or fewer --columns")
    columns = {name: _numbers(path, frame, name) for name in (target, *features)}
    for name in features:
        if np.ptp(columns[name]) == 0:
            raise UsageError(f"{path}: feature column {name!r} is constant ({columns[name][0]:g} in every row), "
                             "which makes the least-squares problem singular; leave it out with --columns")
    X = np.column_stack([columns[name] for name in features])  # (n, m) float64
    y = columns[target].reshape(-1, 1)  # (n, 1) float64
    digest = hashlib.sha256(raw).hexdigest()[:12]
    source = (f"{path}: {len(frame)} rows; target {target}; features {', '.join(features)}; "
              f"sha256 {digest}")
    return Dataset(X=X, y=y, feature_names=tuple(features), target_name=target, source=source)


def _read_bytes(path):
    """The file's bytes, or a UsageError saying why they cannot be read."""
    if not path.exists():
        raise UsageError(f"{path}: no such file; check the --data path")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a CSV file; give the path of a .csv file to --data")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if not raw.strip():
        raise UsageError(f"{path}: the file is empty; it needs a header row and at least 2 data rows")
    return raw


def _decode(path, raw):
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark is not part of the first column's name
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8 CSV") from None


def _header(path, text):
    """The column names as the first line spells them (pandas would rename duplicates to 'a.1')."""
    header = [name.strip() for name in next(csv.reader(io.StringIO(text)))]
    seen = set()
    for k, name in enumerate(header, start=1):
        if not name:
            raise UsageError(f"{path}: column {k} has no name in the header (line 1); name every column")
        if name in seen:
            raise UsageError(f"{path}: column name {name!r} appears more than once in the header (line 1); "
                             "give every column a unique name")
        seen.add(name)
    return header


def _parse(path, text, header):
    """Every cell as a stripped string; blank lines are dropped but keep their line numbers in the index."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False,
                            skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise UsageError(f"{path}: is not a well-formed CSV file ({str(exc).strip().splitlines()[0]}); "
                         "every row needs as many fields as the header") from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took surplus leading fields as an index
        raise UsageError(f"{path}: the data rows have more fields than the header (line 1); "
                         "name every column in the header")
    frame.columns = header
    frame = frame.fillna("").apply(lambda column: column.str.strip())
    frame.index = frame.index + 2  # line numbers: the header is line 1
    frame = frame[(frame != "").any(axis=1)]  # blank lines
    if frame.empty:
        raise UsageError(f"{path}: has a header but no data rows; add at least 2 rows of numbers")
    return frame


def _looks_numeric(cells):
    """A column counts as numeric when any of its cells reads as a number (so a typo is reported, not skipped)."""
    return pd.to_numeric(cells, errors="coerce").notna().any()


def _choose_features(path, header, numeric, target, features):
    if features is None:
        chosen = [name for name in numeric if name != target]
        if not chosen:
            raise UsageError(f"{path}: no numeric column besides the target {target!r} to use as a feature; "
                             f"the columns are {_listing(header)}")
        return chosen
    chosen = [str(name).strip() for name in features]
    if not chosen:
        raise UsageError(f"{path}: no feature columns given; name them with --columns or leave it out to use "
                         "every other numeric column")
    for name in chosen:
        if name not in header:
            raise UsageError(f"{path}: no feature column {name!r}; the columns are {_listing(header)}")
        if name == target:
            raise UsageError(f"{path}: the target {target!r} is also listed as a feature; remove it from --columns")
    repeated = sorted({name for name in chosen if chosen.count(name) > 1})
    if repeated:
        raise UsageError(f"{path}: feature column {repeated[0]!r} is listed twice in --columns; list it once")
    return chosen


def _numbers(path, frame, name):
    """The column as float64, or a UsageError naming the first bad cell by line number."""
    cells = frame[name]
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64)
    for line, cell, value in zip(frame.index, cells, values):
        if cell == "":
            raise UsageError(f"{path}: column {name!r} has an empty value on line {line}; "
                             "fill it in or remove the row")
        if np.isnan(value):
            if cell.lower() in {"nan", "-nan", "+nan", "na", "n/a", "null", "none"}:
                raise UsageError(f"{path}: column {name!r} has a missing value ({cell}) on line {line}; "
                                 "fill it in or remove the row")
            raise UsageError(f"{path}: column {name!r} has a non-numeric value {cell!r} on line {line}; "
                             "fix the value or leave the column out with --columns")
        if np.isinf(value):
            raise UsageError(f"{path}: column {name!r} has an infinite value ({cell}) on line {line}; "
                             "use a finite number or remove the row")
    return values


def _listing(header):
    return ", ".join(repr(name) for name in header)


def _headerless_hint(header):
    if all(pd.notna(pd.to_numeric(name, errors="coerce")) for name in header):
        return " (line 1 looks like data: the file needs a header row naming its columns)"
    return ""
