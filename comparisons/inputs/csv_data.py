"""Real data: a CSV file loaded with pandas into a Dataset, with one clear UsageError per bad input.

Row numbers in messages are line numbers in the file: the header is line 1, the first data row line 2.
The file is read in chunks of CHUNK_ROWS rows (a progress bar on stderr for a large file): each
chunk's cells are parsed as text (so a bad cell is named by its line) and kept only as float64
columns, so memory stays near the data's own size rather than that of every cell as a string.
"""
import codecs
import csv
import dataclasses
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from comparisons.inputs.data import Dataset
from comparisons.core.errors import UsageError

CHUNK_ROWS = 50_000  # rows parsed at a time: their cells as strings are the load's transient memory
PROGRESS_MIN_BYTES = 16 * 2**20  # files from this size get a progress bar
BLOCK_BYTES = 4 * 2**20  # the checksum's and UTF-8 check's read size
MISSING_WORDS = {"nan", "-nan", "+nan", "na", "n/a", "null", "none"}


def load_csv(path, target, features=None):
    """The Dataset of `target` against `features` (default: every other numeric column) from a CSV file."""
    path = Path(path)
    size, digest = _check_bytes(path)
    header = _header(path)
    scans, rows = _parse(path, header, size)
    if target not in header:
        raise UsageError(f"{path}: no column {target!r} to use as --target; the columns are {_listing(header)}"
                         + _headerless_hint(header))
    numeric = [name for name in header if scans[name].any_numeric]
    features = _choose_features(path, header, numeric, target, features)
    if rows < 2:
        raise UsageError(f"{path}: has {rows} data row{'s' * (rows != 1)}; "
                         "a regression needs at least 2 rows, add more data")
    if rows < len(features) + 1:
        raise UsageError(f"{path}: {rows} rows cannot determine {len(features)} weights and a bias; "
                         f"use at least {len(features) + 1} rows or fewer --columns")
    columns = {name: _numbers(path, name, scans[name]) for name in (target, *features)}
    for name in features:
        if np.ptp(columns[name]) == 0:
            raise UsageError(f"{path}: feature column {name!r} is constant ({columns[name][0]:g} in every row), "
                             "which makes the least-squares problem singular; leave it out with --columns")
    X = np.column_stack([columns[name] for name in features])  # (n, m) float64
    y = columns[target].reshape(-1, 1)  # (n, 1) float64
    source = (f"{path}: {rows} rows; target {target}; features {', '.join(features)}; "
              f"sha256 {digest[:12]}")
    return Dataset(X=X, y=y, feature_names=tuple(features), target_name=target, source=source)


def _check_bytes(path):
    """(size, sha256 hex) of the file, read once in blocks; UsageError if missing, unreadable, empty or not UTF-8."""
    if not path.exists():
        raise UsageError(f"{path}: no such file; check the --data path")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a CSV file; give the path of a .csv file to --data")
    digest, decoder = hashlib.sha256(), codecs.getincrementaldecoder("utf-8-sig")()
    offset, blank = 0, True
    try:
        with open(path, "rb") as handle:
            while block := handle.read(BLOCK_BYTES):
                digest.update(block)
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    raise UsageError(f"{path}: is not UTF-8 text (bad byte at offset {offset - pending + exc.start}); "
                                     "save it as UTF-8 CSV") from None
                blank = blank and not block.strip()
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # the file ends inside a character
        raise UsageError(f"{path}: is not UTF-8 text (bad byte at offset {offset - 1}); save it as UTF-8 CSV") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if blank:
        raise UsageError(f"{path}: the file is empty; it needs a header row and at least 2 data rows")
    return offset, digest.hexdigest()


def _header(path):
    """The column names as the first line spells them (pandas would rename duplicates to 'a.1')."""
    with open(path, encoding="utf-8-sig", newline="") as handle:  # a byte-order mark is not part of a name
        header = [name.strip() for name in next(csv.reader(handle), [])]
    seen = set()
    for k, name in enumerate(header, start=1):
        if not name:
            raise UsageError(f"{path}: column {k} has no name in the header (line 1); name every column")
        if name in seen:
            raise UsageError(f"{path}: column name {name!r} appears more than once in the header (line 1); "
                             "give every column a unique name")
        seen.add(name)
    return header


@dataclasses.dataclass
class _ColumnScan:
    """One column as read so far: its float64 parts, whether any cell is a number, and its first bad cell."""

    parts: list = dataclasses.field(default_factory=list)
    any_numeric: bool = False
    problem: tuple | None = None  # (line, cell text, parsed value) of the first empty, missing, non-numeric or inf cell

    def add(self, cells, lines):
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64)
        self.parts.append(values)
        finite = np.isfinite(values)
        self.any_numeric = self.any_numeric or bool((finite | np.isinf(values)).any())
        if self.problem is None and not finite.all():
            k = int(np.argmin(finite))  # the first cell that is not a finite number
            self.problem = (int(lines[k]), cells.iloc[k], values[k])


def _parse(path, header, size):
    """({column: _ColumnScan}, data rows) of the file, in chunks; blank lines are skipped but keep their line numbers."""
    scans = {name: _ColumnScan() for name in header}
    rows = 0
    bar = None
    if size >= PROGRESS_MIN_BYTES:
        from tqdm import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, leave=False, desc=f"reading {path.name}")
    try:
        with open(path, "rb") as handle:
            chunks = pd.read_csv(handle, encoding="utf-8-sig", dtype=str, keep_default_na=False,
                                 skip_blank_lines=False, skipinitialspace=True, chunksize=CHUNK_ROWS)
            for chunk in chunks:
                if not isinstance(chunk.index, pd.RangeIndex):  # pandas took surplus leading fields as an index
                    raise UsageError(f"{path}: the data rows have more fields than the header (line 1); "
                                     "name every column in the header")
                chunk.columns = header
                chunk = chunk.fillna("").apply(lambda column: column.str.strip())
                lines = chunk.index.to_numpy() + 2  # line numbers: the header is line 1
                kept = (chunk != "").any(axis=1).to_numpy()  # blank lines
                chunk, lines = chunk[kept], lines[kept]
                for name in header:
                    scans[name].add(chunk[name], lines)
                rows += len(chunk)
                if bar is not None:
                    bar.update(handle.tell() - bar.n)
    except (pd.errors.ParserError, ValueError) as exc:
        raise UsageError(f"{path}: is not a well-formed CSV file ({str(exc).strip().splitlines()[0]}); "
                         "every row needs as many fields as the header") from None
    except pd.errors.EmptyDataError:
        rows = 0
    finally:
        if bar is not None:
            bar.close()
    if rows == 0:
        raise UsageError(f"{path}: has a header but no data rows; add at least 2 rows of numbers")
    return scans, rows


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


def _numbers(path, name, scan):
    """The column as float64, or a UsageError naming its first bad cell by line number."""
    if scan.problem is not None:
        line, cell, value = scan.problem
        if cell == "":
            raise UsageError(f"{path}: column {name!r} has an empty value on line {line}; "
                             "fill it in or remove the row")
        if np.isnan(value):
            if cell.lower() in MISSING_WORDS:
                raise UsageError(f"{path}: column {name!r} has a missing value ({cell}) on line {line}; "
                                 "fill it in or remove the row")
            raise UsageError(f"{path}: column {name!r} has a non-numeric value {cell!r} on line {line}; "
                             "fix the value or leave the column out with --columns")
        raise UsageError(f"{path}: column {name!r} has an infinite value ({cell}) on line {line}; "
                         "use a finite number or remove the row")
    return np.concatenate(scan.parts)


def _listing(header):
    return ", ".join(repr(name) for name in header)


def _headerless_hint(header):
    if all(pd.notna(pd.to_numeric(name, errors="coerce")) for name in header):
        return " (line 1 looks like data: the file needs a header row naming its columns)"
    return ""
