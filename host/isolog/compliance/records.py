"""Records (JSON lines, docs/shipment.md) loaded into NumPy arrays, validated.

The engine works on columns: one array per field, in seq order. Loading refuses what would make a
verdict wrong without saying so: an empty file, records out of seq order or repeated, NaN or
infinite numbers, fields of the wrong type, several devices in one file. Unknown flags are kept
(a newer firmware may add some) and reported by the data-integrity rule.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import numpy as np

from isolog.errors import UserError
from isolog.shipment import RECORD_FIELDS
from isolog_fw import record

# Flag names of docs/shipment.md (firmware/record.py names them), in a fixed bit order for the
# in-memory mask (not the on-flash bits: the JSON carries names).
FLAGS = tuple(name for _, name in record.FLAG_NAMES)
FLAG_BIT = {name: 1 << i for i, name in enumerate(FLAGS)}

_REQUIRED = RECORD_FIELDS[1:]  # all but "device"


@dataclass
class Records:
    device: str
    seq: np.ndarray  # int64
    boot: np.ndarray  # int64
    time_s: np.ndarray  # float64 epoch seconds, NaN where the clock was not valid
    uptime_s: np.ndarray  # float64
    counts: np.ndarray  # int64, cumulative since boot
    interval_s: np.ndarray  # float64
    interval_counts: np.ndarray  # int64
    dose_rate_usv_h: np.ndarray  # float64, NaN where null (over range or silent tube)
    temperature_c: np.ndarray  # float64, NaN where null (sensor fault)
    flags: np.ndarray  # uint32 mask over FLAGS
    unknown_flags: dict[str, int] = field(default_factory=dict)  # name -> number of records
    source: str = ""
    sha256: str | None = None  # of the file bytes the records were read from

    def __len__(self) -> int:
        return len(self.seq)

    def has(self, flag: str) -> np.ndarray:
        return (self.flags & FLAG_BIT[flag]) != 0


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(path: str | Path) -> Records:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read records file {p}: {exc.strerror or exc}") from None
    recs = loads(data, source=str(p))
    recs.sha256 = hashlib.sha256(data).hexdigest()
    return recs


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def loads(data: bytes | str, source: str = "<records>") -> Records:
    """Parse JSON lines; blank lines are skipped. Errors name the file and line."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    lines = text.splitlines()
    line_no = [i for i, line in enumerate(lines, 1) if line.strip()]
    if not line_no:
        raise UserError(f"{source}: no records (the file is empty)")
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    # Fast path: one C-level parse of all lines as a JSON array. On any error, parse line by line
    # to say which line is wrong.
    try:
        objs = decoder.decode("[" + ",".join(lines[i - 1] for i in line_no) + "]")
        if len(objs) != len(line_no) or set(map(type, objs)) != {dict}:
            raise ValueError("not one object a line")
    except ValueError:
        objs = []
        for i in line_no:
            try:
                obj = decoder.decode(lines[i - 1])
            except ValueError as exc:
                msg = str(exc)
                if "is not a number JSON allows" in msg:
                    raise UserError(
                        f"{source} line {i}: {msg.split(' is not')[0]} in a record: a missing reading "
                        "is null (with the temp_fault / over_range / gm_silent flag), never NaN"
                    ) from None
                raise UserError(f"{source} line {i}: not a JSON object: {msg}") from None
            if not isinstance(obj, dict):
                raise UserError(f"{source} line {i}: not a JSON object")
            objs.append(obj)
    if not objs:
        raise UserError(f"{source}: no records (the file is empty)")
    return from_objects(objs, source, line_no)


# Integers in a record are counts and sequence numbers: 0..2^53-1 (exact as a JSON number in every
# reader, and far beyond the board's 32-bit counters). Times: 1970-01-01 to 2199-12-31 UTC.
MAX_INT = 2**53 - 1
TIME_MIN_S = 0.0
TIME_END_S = 7258118400.0  # 2200-01-01T00:00:00Z
_INT_FIELDS = ("seq", "boot", "counts", "interval_counts")
_FLOAT_FIELDS = ("uptime_s", "interval_s", "dose_rate_usv_h", "temperature_c")
_NULLABLE = ("time", "dose_rate_usv_h", "temperature_c")
_TIME_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


def _brief(v) -> str:
    text = repr(v) if not isinstance(v, int) or v.bit_length() < 200 else f"an integer of {len(str(v))} digits"
    return text if len(text) <= 60 else text[:57] + "..."


def _column(objs, key, source, line_no, types, nullable=False, what="a number"):
    """Values of `key`; raises naming the first record whose value has the wrong type."""
    try:
        col = list(map(itemgetter(key), objs))
    except KeyError:
        col = [o.get(key, _MISSING) for o in objs]
    _check_types(col, key, lambda i: f"{source} line {line_no[i]}", types, nullable, what)
    return col


def _check_types(col, key, where, types, nullable=False, what="a number") -> None:
    allowed = set(types) | ({type(None)} if nullable else set())
    found = set(map(type, col))
    if not found <= allowed:
        for i, v in enumerate(col):
            if type(v) not in allowed:
                if v is _MISSING:
                    raise UserError(f"{where(i)}: field {key!r} is missing")
                null = " or null" if nullable else ""
                raise UserError(f"{where(i)}: field {key!r} must be {what}{null}, not {_brief(v)}")


class _Missing:
    def __repr__(self):
        return "missing"


_MISSING = _Missing()


def _ints(col, key, where) -> np.ndarray:
    """Python ints (types already checked) as int64 in 0..MAX_INT, naming the first one that is not."""
    try:
        arr = np.array(col, dtype=np.int64)
    except OverflowError:
        arr = None
    if arr is None or ((arr < 0) | (arr > MAX_INT)).any():
        for i, v in enumerate(col):
            if v < 0:
                raise UserError(f"{where(i)}: field {key!r} is negative: {_brief(v)}")
            if v > MAX_INT:
                raise UserError(f"{where(i)}: field {key!r} must be an integer in 0..{MAX_INT}, not {_brief(v)}")
    assert arr is not None
    return arr


def _floats(col, key, where, nullable=False) -> np.ndarray:
    try:
        arr = np.array(col, dtype=np.float64)  # None -> NaN
    except OverflowError:  # an integer literal beyond the float range
        for i, v in enumerate(col):
            if isinstance(v, int) and abs(v) > 2**1023:
                raise UserError(f"{where(i)}: field {key!r} is not finite: {_brief(v)}") from None
        raise
    # NaN only where the source said null: anything else non-finite came from a huge literal.
    bad = ~np.isfinite(arr)
    if nullable and bad.any():
        bad &= np.array([v is not None for v in col])
    if bad.any():
        i = int(np.argmax(bad))
        raise UserError(f"{where(i)}: field {key!r} is not finite: {_brief(col[i])}")
    return arr


def _parse_times(col, where) -> np.ndarray:
    """ISO 8601 UTC strings ('...Z') or null -> epoch seconds, NaN for null. Vectorised through
    datetime64 for the common 'YYYY-MM-DDTHH:MM:SS[.fff]Z' form."""
    out = np.full(len(col), math.nan)
    idx = [i for i, v in enumerate(col) if v is not None]
    if not idx:
        return out
    texts = [col[i] for i in idx]
    match = _TIME_SHAPE.fullmatch
    if not all(map(match, texts)):
        for i, t in zip(idx, texts):
            if not match(t):
                raise UserError(
                    f"{where(i)}: field 'time' must be UTC ISO 8601 like '2026-11-26T08:01:00Z' or null, "
                    f"not {_brief(t)}"
                )
    try:
        dt = np.array([t[:-1] for t in texts], dtype="datetime64[us]")
    except ValueError:
        for i, t in zip(idx, texts):
            try:
                np.datetime64(t[:-1], "us")
            except ValueError:
                raise UserError(f"{where(i)}: field 'time' is not a valid time: {t!r}") from None
        raise
    secs = dt.astype(np.int64) / 1e6
    bad = (secs < TIME_MIN_S) | (secs >= TIME_END_S)
    if bad.any():
        k = int(np.argmax(bad))
        raise UserError(f"{where(idx[k])}: field 'time' is out of range (1970..2199): {texts[k]!r}")
    out[np.array(idx)] = secs
    return out


def _flag_masks(keys, where) -> tuple[np.ndarray, dict[str, int]]:
    """Flag lists (or their JSON texts, from the store) -> (uint32 masks, unknown flag counts)."""
    counts = Counter(keys)
    masks: dict = {}
    unknown: dict[str, int] = {}
    for key, n in counts.items():
        names = key
        if isinstance(key, str):  # the store keeps the list as its JSON text
            try:
                names = json.loads(key)
            except ValueError:
                names = None
            if not isinstance(names, list):
                raise UserError(f"{where(keys.index(key))}: field 'flags' is not a JSON list: {_brief(key)}")
        mask = 0
        for name in names:
            if not isinstance(name, str):
                raise UserError(f"{where(keys.index(key))}: field 'flags' must hold strings, not {_brief(name)}")
            bit = FLAG_BIT.get(name)
            if bit is None:
                unknown[name] = unknown.get(name, 0) + n
            else:
                mask |= bit
        masks[key] = mask
    return np.fromiter(map(masks.__getitem__, keys), dtype=np.uint32, count=len(keys)), unknown


def from_objects(objs: list[dict], source: str = "<records>", line_no: list[int] | None = None) -> Records:
    if not objs:
        raise UserError(f"{source}: no records")
    if line_no is None:
        line_no = list(range(1, len(objs) + 1))
    lines = line_no

    def where(i: int) -> str:
        return f"{source} line {lines[i]}"

    devices_col = [o.get("device") for o in objs]
    _check_types(devices_col, "device", where, (str,), nullable=True, what="a string")
    devices = set(devices_col)
    if len(devices) > 1:
        shown = ", ".join(sorted(map(str, devices))[:4])
        raise UserError(f"{source}: records from several devices ({shown}): check one device at a time")
    device = devices.pop()

    for key in _REQUIRED:
        if key not in objs[0]:
            raise UserError(f"{where(0)}: field {key!r} is missing")

    int_t = (int,)
    num_t = (int, float)
    cols = {}
    for key in _INT_FIELDS:
        cols[key] = _ints(_column(objs, key, source, line_no, int_t, what="an integer"), key, where)
    for key in _FLOAT_FIELDS:
        nullable = key in _NULLABLE
        cols[key] = _floats(_column(objs, key, source, line_no, num_t, nullable=nullable), key, where, nullable)
    times = _parse_times(
        _column(objs, "time", source, line_no, (str,), nullable=True, what="an ISO 8601 string"), where
    )
    flag_lists = _column(objs, "flags", source, line_no, (list,), what="a list of strings")
    try:
        flags, unknown = _flag_masks([tuple(fl) for fl in flag_lists], where)
    except TypeError:  # a flag that is a list or an object (unhashable)
        for i, fl in enumerate(flag_lists):
            for name in fl:
                if not isinstance(name, str):
                    raise UserError(f"{where(i)}: field 'flags' must hold strings, not {_brief(name)}") from None
        raise
    return _finish(device or "", cols, times, flags, unknown, source, where)


def _finish(device, cols, times, flags, unknown, source, where) -> Records:
    """The checks on whole columns (both sources), then the Records."""
    seq = cols["seq"]
    interval = cols["interval_s"]
    dose = cols["dose_rate_usv_h"]
    if (interval <= 0).any():
        i = int(np.argmax(interval <= 0))
        raise UserError(f"{where(i)}: field 'interval_s' must be > 0, not {interval[i]:g}")
    if (dose < 0).any():
        i = int(np.argmax(dose < 0))
        raise UserError(f"{where(i)}: field 'dose_rate_usv_h' is negative: {dose[i]:g}")

    # Sequence numbers: strictly increasing. Say which problem it is and where.
    d = np.diff(seq)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0))
        if d[i] == 0:
            a, b = where(i), where(i + 1)
            both = f"{a} and {b.rsplit(' ', 1)[-1]}".replace(" line ", " lines ") if " line " in a else f"{a}, {b}"
            raise UserError(f"{both}: duplicate seq {int(seq[i])}: the file repeats records (merged exports?)")
        raise UserError(
            f"{where(i + 1)}: seq {int(seq[i + 1])} after {int(seq[i])}: records are "
            "not in seq order (sort them by seq)"
        )

    return Records(
        device=device,
        seq=seq,
        boot=cols["boot"],
        time_s=times,
        uptime_s=cols["uptime_s"],
        counts=cols["counts"],
        interval_s=interval,
        interval_counts=cols["interval_counts"],
        dose_rate_usv_h=dose,
        temperature_c=cols["temperature_c"],
        flags=flags,
        unknown_flags=unknown,
        source=source,
    )


# The columns of a stored record row, in the store's SELECT order (store.ROW_FIELDS).
ROW_FIELDS = RECORD_FIELDS[1:]


@dataclass
class RowChunk:
    """One fetch of stored rows as validated columns; `exact` marks the rows whose JSON line needs
    json.dumps (a null somewhere), for the streaming SHA-256 of the export bytes."""

    cols: dict[str, np.ndarray]
    times: np.ndarray
    flag_texts: list[str]
    exact: np.ndarray


def row_chunk(rows: list[tuple], where_prefix: str) -> RowChunk:
    """Validate stored rows (seq..flags, as `SELECT` gives them) into NumPy columns. The store's
    columns have SQLite types, not enforced: a wrong type or value is named with its seq."""
    raw = list(zip(*rows))
    seqs = raw[0]

    def where(i: int) -> str:
        return f"{where_prefix}, record seq {_brief(seqs[i])}"

    by = dict(zip(ROW_FIELDS, raw))
    cols = {}
    for key in _INT_FIELDS:
        _check_types(by[key], key, where, (int,), what="an integer")
        cols[key] = _ints(by[key], key, where)
    for key in _FLOAT_FIELDS:
        nullable = key in _NULLABLE
        _check_types(by[key], key, where, (float, int), nullable=nullable)
        cols[key] = _floats(by[key], key, where, nullable)
    _check_types(by["time"], "time", where, (str,), nullable=True, what="an ISO 8601 string")
    times = _parse_times(by["time"], where)
    _check_types(by["flags"], "flags", where, (str,), what="a JSON list of strings")
    exact = np.isnan(times) | np.isnan(cols["dose_rate_usv_h"]) | np.isnan(cols["temperature_c"])
    return RowChunk(cols, times, list(by["flags"]), exact)


def from_row_chunks(device: str, chunks: list[RowChunk], source: str) -> Records:
    """Records from the chunks row_chunk made (in seq order)."""
    if not chunks:
        raise UserError(f"{source}: no records")
    cols = {k: np.concatenate([c.cols[k] for c in chunks]) for k in _INT_FIELDS + _FLOAT_FIELDS}
    times = np.concatenate([c.times for c in chunks])
    texts = [t for c in chunks for t in c.flag_texts]
    seq = cols["seq"]

    def where(i: int) -> str:
        return f"{source}, record seq {int(seq[i])}"

    flags, unknown = _flag_masks(texts, where)
    return _finish(device, cols, times, flags, unknown, source, where)


def to_json_lines(r: Records) -> str:
    """Records back to JSON lines (tests and the bench write files with it)."""
    from isolog.units import format_time

    out = []
    for i in range(len(r)):
        t = r.time_s[i]
        obj = {
            "device": r.device,
            "seq": int(r.seq[i]),
            "boot": int(r.boot[i]),
            "time": None if math.isnan(t) else format_time(float(t)),
            "uptime_s": float(r.uptime_s[i]),
            "counts": int(r.counts[i]),
            "interval_s": float(r.interval_s[i]),
            "interval_counts": int(r.interval_counts[i]),
            "dose_rate_usv_h": None if math.isnan(r.dose_rate_usv_h[i]) else float(r.dose_rate_usv_h[i]),
            "temperature_c": None if math.isnan(r.temperature_c[i]) else float(r.temperature_c[i]),
            "flags": [name for name in FLAGS if r.flags[i] & FLAG_BIT[name]],
        }
        out.append(json.dumps(obj))
    return "\n".join(out) + "\n"
