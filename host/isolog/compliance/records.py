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


def _column(objs, key, source, line_no, types, nullable=False, what="a number"):
    """Values of `key`; raises naming the first record whose value has the wrong type."""
    try:
        col = list(map(itemgetter(key), objs))
    except KeyError:
        col = [o.get(key, _MISSING) for o in objs]
    allowed = set(types) | ({type(None)} if nullable else set())
    found = set(map(type, col))
    if not found <= allowed:
        for i, v in enumerate(col):
            if type(v) not in allowed:
                if v is _MISSING:
                    raise UserError(f"{source} line {line_no[i]}: field {key!r} is missing")
                null = " or null" if nullable else ""
                raise UserError(f"{source} line {line_no[i]}: field {key!r} must be {what}{null}, not {v!r}")
    return col


class _Missing:
    def __repr__(self):
        return "missing"


_MISSING = _Missing()


def _floats(col, key, source, line_no, nullable=False) -> np.ndarray:
    arr = np.array([math.nan if v is None else v for v in col] if nullable else col, dtype=np.float64)
    # NaN only where the JSON said null: anything else non-finite came from a huge literal.
    bad = ~np.isfinite(arr)
    if nullable:
        bad &= np.array([v is not None for v in col])
    if bad.any():
        i = int(np.argmax(bad))
        raise UserError(f"{source} line {line_no[i]}: field {key!r} is not finite: {col[i]!r}")
    return arr


def _parse_times(col, source, line_no) -> np.ndarray:
    """ISO 8601 UTC strings ('...Z') or null -> epoch seconds, NaN for null. Vectorised through
    datetime64 for the common 'YYYY-MM-DDTHH:MM:SS[.fff]Z' form."""
    out = np.full(len(col), math.nan)
    idx = [i for i, v in enumerate(col) if v is not None]
    if not idx:
        return out
    texts = [col[i] for i in idx]
    if not all(t.endswith("Z") and len(t) >= 20 and t[10] == "T" for t in texts):
        for i, t in zip(idx, texts):
            if not (t.endswith("Z") and len(t) >= 20 and t[10] == "T"):
                raise UserError(
                    f"{source} line {line_no[i]}: field 'time' must be UTC ISO 8601 like "
                    f"'2026-11-26T08:01:00Z' or null, not {t!r}"
                )
    try:
        dt = np.array([t[:-1] for t in texts], dtype="datetime64[us]")
    except ValueError:
        for i, t in zip(idx, texts):
            try:
                np.datetime64(t[:-1], "us")
            except ValueError:
                raise UserError(f"{source} line {line_no[i]}: field 'time' is not a valid time: {t!r}") from None
        raise
    out[np.array(idx)] = dt.astype(np.int64) / 1e6
    return out


def from_objects(objs: list[dict], source: str = "<records>", line_no: list[int] | None = None) -> Records:
    if not objs:
        raise UserError(f"{source}: no records")
    if line_no is None:
        line_no = list(range(1, len(objs) + 1))
    devices = {o.get("device") for o in objs}
    if len(devices) > 1:
        shown = ", ".join(sorted(map(str, devices))[:4])
        raise UserError(f"{source}: records from several devices ({shown}): check one device at a time")
    device = devices.pop()
    if device is not None and not isinstance(device, str):
        raise UserError(f"{source} line {line_no[0]}: field 'device' must be a string, not {device!r}")

    for key in _REQUIRED:
        if key not in objs[0]:
            raise UserError(f"{source} line {line_no[0]}: field {key!r} is missing")

    int_t = (int,)
    num_t = (int, float)
    seq = np.array(_column(objs, "seq", source, line_no, int_t, what="an integer"), dtype=np.int64)
    boot = np.array(_column(objs, "boot", source, line_no, int_t, what="an integer"), dtype=np.int64)
    uptime = _floats(_column(objs, "uptime_s", source, line_no, num_t), "uptime_s", source, line_no)
    counts = np.array(_column(objs, "counts", source, line_no, int_t, what="an integer"), dtype=np.int64)
    interval = _floats(_column(objs, "interval_s", source, line_no, num_t), "interval_s", source, line_no)
    icounts = np.array(_column(objs, "interval_counts", source, line_no, int_t, what="an integer"), dtype=np.int64)
    dose = _floats(
        _column(objs, "dose_rate_usv_h", source, line_no, num_t, nullable=True),
        "dose_rate_usv_h",
        source,
        line_no,
        nullable=True,
    )
    temp = _floats(
        _column(objs, "temperature_c", source, line_no, num_t, nullable=True),
        "temperature_c",
        source,
        line_no,
        nullable=True,
    )
    times = _parse_times(
        _column(objs, "time", source, line_no, (str,), nullable=True, what="an ISO 8601 string"),
        source,
        line_no,
    )
    flag_lists = _column(objs, "flags", source, line_no, (list,), what="a list of strings")

    # bool is an int subclass in Python but never a valid count: type() above already refused it
    # (type(True) is bool, not int).
    for name, arr in (("interval_counts", icounts), ("counts", counts)):
        if (arr < 0).any():
            i = int(np.argmax(arr < 0))
            raise UserError(f"{source} line {line_no[i]}: field {name!r} is negative: {int(arr[i])}")
    if (interval <= 0).any():
        i = int(np.argmax(interval <= 0))
        raise UserError(f"{source} line {line_no[i]}: field 'interval_s' must be > 0, not {interval[i]:g}")
    if (dose < 0).any():
        i = int(np.argmax(dose < 0))
        raise UserError(f"{source} line {line_no[i]}: field 'dose_rate_usv_h' is negative: {dose[i]:g}")

    # Sequence numbers: strictly increasing. Say which problem it is and where.
    d = np.diff(seq)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0))
        if d[i] == 0:
            raise UserError(
                f"{source} lines {line_no[i]} and {line_no[i + 1]}: duplicate seq {int(seq[i])}: "
                "the file repeats records (merged exports?)"
            )
        raise UserError(
            f"{source} line {line_no[i + 1]}: seq {int(seq[i + 1])} after {int(seq[i])}: records are "
            "not in seq order (sort them by seq)"
        )

    flags = np.zeros(len(objs), dtype=np.uint32)
    unknown: dict[str, int] = {}
    cache: dict[tuple, int] = {}
    for i, fl in enumerate(flag_lists):
        key = tuple(fl)
        mask = cache.get(key)
        if mask is None:
            mask = 0
            for name in fl:
                if not isinstance(name, str):
                    raise UserError(f"{source} line {line_no[i]}: field 'flags' must hold strings, not {name!r}")
                bit = FLAG_BIT.get(name)
                if bit is None:
                    continue
                mask |= bit
            cache[key] = mask
        flags[i] = mask
        for name in fl:
            if name not in FLAG_BIT:
                unknown[name] = unknown.get(name, 0) + 1

    return Records(
        device=device or "",
        seq=seq,
        boot=boot,
        time_s=times,
        uptime_s=uptime,
        counts=counts,
        interval_s=interval,
        interval_counts=icounts,
        dose_rate_usv_h=dose,
        temperature_c=temp,
        flags=flags,
        unknown_flags=unknown,
        source=source,
    )


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
