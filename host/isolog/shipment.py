"""The shipment configuration (TOML, docs/shipment.md): load, validate, convert for the board.

Every error names the file and the field, e.g. "shipment.toml: [sensor] dead_time_us: must be a
number >= 0, not 'fast'". Unknown fields are refused too: a misspelt limit must not silently
fall back to a default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, NoReturn, TypeVar, overload

from isolog import nuclides
from isolog.errors import UserError
from isolog.units import parse_activity_bq, parse_duration_s, parse_time
from isolog_fw import config as board_config

CATEGORIES = ("excepted", "I-WHITE", "II-YELLOW", "III-YELLOW")
POSITIONS = ("surface", "1m", "calibrated")
DIRECTIONS = ("above", "below")
RULE_TYPES = ("single", "cumulative")
# Board logging interval limits (docs/shipment.md [logging]).
# The fields of a record as JSON (docs/shipment.md#records-json-lines: `isolog log dump --json`,
# `isolog export`, the store's records table), in their order.
RECORD_FIELDS = (
    "device",
    "seq",
    "boot",
    "time",
    "uptime_s",
    "counts",
    "interval_s",
    "interval_counts",
    "dose_rate_usv_h",
    "temperature_c",
    "flags",
)
# The board's own limits (firmware/config.py): a file accepted here is never refused by the board.
_, INTERVAL_MIN_S, INTERVAL_MAX_S = board_config.NUMBERS["interval_s"]
# Physical form of the contents, for the activity limits of excepted packages (IAEA SSR-6 Table 4 /
# 49 CFR 173.425 Table 4): special form is judged against A1, every other form against A2.
PHYSICAL_FORMS = ("solid", "liquid", "gas", "special_form")
# Mode of transport: which exclusive-use limits may apply (IAEA SSR-6 / 49 CFR 173.441).
TRANSPORT_MODES = ("road", "rail", "sea", "air")

_T = TypeVar("_T")


@dataclass(frozen=True)
class TemperatureRule:
    name: str
    threshold_c: float
    direction: str  # "above" | "below"
    allowed_s: float
    type: str  # "single" | "cumulative"

    def describe(self) -> str:
        sign = ">" if self.direction == "above" else "<"
        return f"{sign} {self.threshold_c:g} °C, {self.type}, allowed {self.allowed_s:g} s"


@dataclass(frozen=True)
class Sensor:
    position: str
    surface_factor: float | None  # surface dose rate = factor x reading; None: unknown
    one_metre_factor: float | None  # dose rate at 1 m = factor x reading; None: unknown
    calibration_cpm_per_usv_h: float
    calibration_nuclide: str | None
    dead_time_us: float
    background_usv_h: float


@dataclass(frozen=True)
class Shipment:
    id: str
    nuclide: str
    activity_bq: float
    reference_time: float  # epoch s
    prescribed_activity_bq: float | None
    prescribed_tolerance: float
    administration_time: float | None
    expiry_time: float | None
    declared_category: str | None
    exclusive_use: bool
    daughters: str  # "equilibrium" | "none": daughters present at reference_time
    sensor: Sensor
    interval_s: float
    dose_warn_usv_h: float
    dose_alarm_usv_h: float
    temperature_rules: tuple[TemperatureRule, ...] = field(default_factory=tuple)
    source: str = ""  # where it was loaded from, for messages and reports
    physical_form: str | None = None  # one of PHYSICAL_FORMS; None: not given
    transport_mode: str | None = None  # one of TRANSPORT_MODES; None: not given
    special_arrangement: bool = False  # shipped under special arrangement (competent authority approval)

    def to_board_dict(self) -> dict[str, Any]:
        """The plain JSON-able configuration the board stores (`isolog configure`)."""
        return {
            "id": self.id,
            "interval_s": int(self.interval_s),
            "cal_cpm_per_usv_h": float(self.sensor.calibration_cpm_per_usv_h),
            "dead_time_us": float(self.sensor.dead_time_us),
            "background_usv_h": float(self.sensor.background_usv_h),
            "dose_warn_usv_h": float(self.dose_warn_usv_h),
            "dose_alarm_usv_h": float(self.dose_alarm_usv_h),
            "temp_rules": [
                [r.name, float(r.threshold_c), r.direction, int(round(r.allowed_s)), r.type]
                for r in self.temperature_rules
            ],
        }


class _Table:
    """One TOML table being read: remembers which keys were used, so leftovers are reported."""

    def __init__(self, where: str, name: str, data: Any):
        self.where = where
        self.name = name
        if not isinstance(data, dict):
            self.fail("", f"must be a table ([{name}]), not {type(data).__name__}")
        self.data = data
        self.used: set[str] = set()

    def fail(self, key: str, message: str) -> NoReturn:
        label = f"[{self.name}] {key}".rstrip() if key else f"[{self.name}]"
        raise UserError(f"{self.where}: {label}: {message}")

    def raw(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if self.data.get(key) is None:  # TOML has no null; a document given as a dict may
            if required:
                self.fail(key, "missing (required)")
            return None
        return self.data[key]

    @overload
    def string(self, key: str, required: Literal[True] = True, choices: tuple[str, ...] | None = None) -> str: ...
    @overload
    def string(self, key: str, required: bool, choices: tuple[str, ...] | None = None) -> str | None: ...

    def string(self, key: str, required: bool = True, choices: tuple[str, ...] | None = None) -> str | None:
        v = self.raw(key, required)
        if v is None:
            return None
        if not isinstance(v, str):
            self.fail(key, f"must be a string, not {v!r}")
        if choices is not None and v not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, not {v!r}")
        return v

    @overload
    def number(
        self,
        key: str,
        required: Literal[True] = True,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_min: bool = False,
    ) -> float: ...
    @overload
    def number(
        self,
        key: str,
        required: bool,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_min: bool = False,
    ) -> float | None: ...

    def number(
        self,
        key: str,
        required: bool = True,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_min: bool = False,
    ) -> float | None:
        v = self.raw(key, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(key, f"must be a number, not {v!r}")
        x = float(v)
        if not math.isfinite(x):
            self.fail(key, f"must be finite, not {v!r}")
        if minimum is not None and (x <= minimum if exclusive_min else x < minimum):
            self.fail(key, f"must be {'>' if exclusive_min else '>='} {minimum:g}, not {v!r}")
        if maximum is not None and x > maximum:
            self.fail(key, f"must be <= {maximum:g}, not {v!r}")
        return x

    def boolean(self, key: str, default: bool) -> bool:
        v = self.raw(key, False)
        if v is None:
            return default
        if not isinstance(v, bool):
            self.fail(key, f"must be true or false, not {v!r}")
        return v

    @overload
    def parsed(self, key: str, parser: Callable[[Any], _T], required: Literal[True] = True) -> _T: ...
    @overload
    def parsed(self, key: str, parser: Callable[[Any], _T], required: bool) -> _T | None: ...

    def parsed(self, key: str, parser: Callable[[Any], _T], required: bool = True) -> _T | None:
        v = self.raw(key, required)
        if v is None:
            return None
        try:
            return parser(v)
        except UserError as exc:
            self.fail(key, str(exc))

    def finish(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            known = ", ".join(sorted(self.used))
            self.fail(extra[0], f"unknown field (known fields: {known})")


def _printable_id(value: str) -> bool:
    return 1 <= len(value) <= 32 and all(0x20 < ord(c) < 0x7F for c in value)


# Times a shipment names (reference, administration, expiry): 1970-01-01 to 2199-12-31 UTC, the
# range of the records' times (compliance/records.py).
TIME_MIN_S = 0.0
TIME_END_S = 7258118400.0  # 2200-01-01T00:00:00Z


def read_text(path: str | Path) -> str:
    """A shipment file's text: UTF-8, as TOML requires (a byte that is not names its line)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read shipment file {p}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UserError(
            f"{p} line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text (a TOML file is UTF-8: "
            "save it as UTF-8, e.g. a character typed in another encoding in a comment)"
        ) from None


def load(path: str | Path) -> Shipment:
    """Read and validate a shipment TOML file."""
    return loads(read_text(path), source=str(path))


def loads(text: str, source: str = "<shipment>") -> Shipment:
    """Validate a shipment given as TOML text."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise UserError(f"{source}: not a shipment file: arrays or tables nested too deeply") from None
    return from_dict(doc, source)


def _shipment_time(value: Any) -> float:
    t = parse_time(value)
    if not TIME_MIN_S <= t < TIME_END_S:
        raise UserError(f"time {value!r} is out of range: a shipment's times are within 1970..2199")
    return t


def from_dict(doc: dict[str, Any], source: str = "<shipment>") -> Shipment:
    known_tables = ("shipment", "sensor", "logging", "dose_rate", "temperature")
    for key in doc:
        if key not in known_tables:
            raise UserError(f"{source}: [{key}]: unknown table (known tables: {', '.join(known_tables)})")
    for key in ("shipment", "sensor", "logging", "dose_rate"):
        if key not in doc:
            raise UserError(f"{source}: [{key}]: missing table (required)")

    s = _Table(source, "shipment", doc["shipment"])
    ship_id = s.string("id")
    if not _printable_id(ship_id):
        s.fail("id", f"must be 1..32 printable ASCII characters without spaces, not {ship_id!r}")
    nuclide_name = s.parsed("nuclide", nuclides.get).name
    activity = s.parsed("activity", parse_activity_bq)
    if activity <= 0:
        s.fail("activity", "must be greater than zero")
    reference_time = s.parsed("reference_time", _shipment_time)
    prescribed = s.parsed("prescribed_activity", parse_activity_bq, required=False)
    tolerance = s.number("prescribed_tolerance", required=False, minimum=0.0, maximum=1.0)
    administration = s.parsed("administration_time", _shipment_time, required=False)
    expiry = s.parsed("expiry_time", _shipment_time, required=False)
    declared = s.string("declared_category", required=False, choices=CATEGORIES)
    exclusive = s.boolean("exclusive_use", False)
    physical_form = s.string("physical_form", required=False, choices=PHYSICAL_FORMS)
    transport_mode = s.string("transport_mode", required=False, choices=TRANSPORT_MODES)
    special_arrangement = s.boolean("special_arrangement", False)
    daughters = s.string("daughters", required=False, choices=("equilibrium", "none")) or "equilibrium"
    s.finish()

    sen = _Table(source, "sensor", doc["sensor"])
    position = sen.string("position", choices=POSITIONS)
    surface_factor = sen.number("surface_factor", required=False, minimum=0.0, exclusive_min=True)
    one_metre_factor = sen.number("one_metre_factor", required=False, minimum=0.0, exclusive_min=True)
    if position == "surface" and surface_factor is None:
        surface_factor = 1.0  # the reading is the surface dose rate
    if position == "1m" and one_metre_factor is None:
        one_metre_factor = 1.0  # the reading is the dose rate at 1 m
    cal = sen.number("calibration_cpm_per_usv_h", minimum=0.0, exclusive_min=True)
    cal_nuclide = sen.string("calibration_nuclide", required=False)
    dead_time = sen.number("dead_time_us", minimum=0.0, maximum=10_000.0)
    background = sen.number("background_usv_h", required=False, minimum=0.0)
    sen.finish()

    lg = _Table(source, "logging", doc["logging"])
    interval = lg.parsed("interval_s", parse_duration_s)
    if not INTERVAL_MIN_S <= interval <= INTERVAL_MAX_S or interval != int(interval):
        lg.fail(
            "interval_s", f"must be a whole number of seconds in {INTERVAL_MIN_S}..{INTERVAL_MAX_S}, not {interval:g}"
        )
    lg.finish()

    dr = _Table(source, "dose_rate", doc["dose_rate"])
    warn = dr.number("warn_usv_h", minimum=0.0, exclusive_min=True)
    alarm = dr.number("alarm_usv_h", minimum=0.0, exclusive_min=True)
    if warn > alarm:
        dr.fail("warn_usv_h", f"must not exceed alarm_usv_h ({alarm:g}), is {warn:g}")
    dr.finish()

    rules: list[TemperatureRule] = []
    if "temperature" in doc:
        t = _Table(source, "temperature", doc["temperature"])
        raw_rules = t.raw("rules", False) or []
        t.finish()
        if not isinstance(raw_rules, list):
            t.fail("rules", "must be an array of tables ([[temperature.rules]])")
        names: set[str] = set()
        if len(raw_rules) > board_config.MAX_RULES:
            t.fail("rules", f"at most {board_config.MAX_RULES} rules (the board's limit), not {len(raw_rules)}")
        for i, rr in enumerate(raw_rules):
            r = _Table(source, f"temperature.rules #{i + 1}", rr)
            name = r.string("name")
            if not (1 <= len(name) <= board_config.RULE_NAME_MAX_LEN and name.isascii() and name.isprintable()):
                r.fail("name", f"must be 1..{board_config.RULE_NAME_MAX_LEN} printable ASCII characters, not {name!r}")
            if name in names:
                r.fail("name", f"duplicate rule name {name!r}")
            names.add(name)
            threshold = r.number(
                "threshold_c", minimum=float(board_config.THRESHOLD_MIN_C), maximum=float(board_config.THRESHOLD_MAX_C)
            )
            direction = r.string("direction", choices=DIRECTIONS)
            allowed = r.parsed("allowed", parse_duration_s)
            if not 0 <= allowed <= board_config.ALLOWED_MAX_S:
                r.fail("allowed", f"must be within 0..{board_config.ALLOWED_MAX_S // 86400} days, not {allowed:g} s")
            kind = r.string("type", choices=RULE_TYPES)
            r.finish()
            rules.append(TemperatureRule(name, threshold, direction, allowed, kind))

    ship = Shipment(
        id=ship_id,
        nuclide=nuclide_name,
        activity_bq=activity,
        reference_time=reference_time,
        prescribed_activity_bq=prescribed,
        prescribed_tolerance=0.10 if tolerance is None else tolerance,
        administration_time=administration,
        expiry_time=expiry,
        declared_category=declared,
        exclusive_use=exclusive,
        daughters=daughters,
        sensor=Sensor(
            position=position,
            surface_factor=surface_factor,
            one_metre_factor=one_metre_factor,
            calibration_cpm_per_usv_h=cal,
            calibration_nuclide=cal_nuclide,
            dead_time_us=dead_time,
            background_usv_h=0.0 if background is None else background,
        ),
        interval_s=interval,
        dose_warn_usv_h=warn,
        dose_alarm_usv_h=alarm,
        temperature_rules=tuple(rules),
        source=source,
        physical_form=physical_form,
        transport_mode=transport_mode,
        special_arrangement=special_arrangement,
    )
    try:  # the board's own check, last: whatever it would refuse is refused here, naming its field
        board_config.validate(ship.to_board_dict())
    except board_config.ConfigError as exc:
        raise UserError(f"{source}: the board would refuse this configuration: {exc}") from None
    return ship
