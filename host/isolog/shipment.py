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
    product: str | None = None  # the product template it names (docs/shipment.md#product-templates)

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


def printable_id(value: str) -> bool:
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


def loads(
    text: str,
    source: str = "<shipment>",
    container: dict[str, Any] | None = None,
    container_name: str = "container",
    products: Callable[[str], str] | None = None,
) -> Shipment:
    """Validate a shipment given as TOML text (container, products: as check_dict)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise UserError(f"{source}: not a shipment file: arrays or tables nested too deeply") from None
    return from_dict(doc, source, container, container_name, products)


def shipment_time(value: Any) -> float:
    t = parse_time(value)
    if not TIME_MIN_S <= t < TIME_END_S:
        raise UserError(f"time {value!r} is out of range: a shipment's times are within 1970..2199")
    return t


class _Errors:
    """Every error of a file, not only the first (`isolog validate` lists them all)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def get(self, read: Callable[[], _T], default: Any = None) -> Any:
        try:
            return read()
        except UserError as exc:
            self.items.append(str(exc))
            return default

    def add(self, message: str) -> None:
        self.items.append(message)


def from_dict(
    doc: dict[str, Any],
    source: str = "<shipment>",
    container: dict[str, Any] | None = None,
    container_name: str = "container",
    products: Callable[[str], str] | None = None,
) -> Shipment:
    """A validated Shipment; UserError names the first error (and how many more there are)."""
    ship, errors = check_dict(doc, source, container, container_name, products)
    if errors or ship is None:
        more = f" (and {len(errors) - 1} more: `isolog validate {source}` lists them all)" if len(errors) > 1 else ""
        raise UserError(errors[0] + more)
    return ship


def validate_text(
    text: str,
    source: str = "<shipment>",
    container: dict[str, Any] | None = None,
    container_name: str = "container",
    products: Callable[[str], str] | None = None,
) -> tuple[Shipment | None, list[str]]:
    """A shipment file's text checked in full: (the Shipment or None, every error found)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{source}: not valid TOML: {exc}"]
    except RecursionError:
        return None, [f"{source}: not a shipment file: arrays or tables nested too deeply"]
    return check_dict(doc, source, container, container_name, products)


def check_dict(
    doc: dict[str, Any],
    source: str = "<shipment>",
    container: dict[str, Any] | None = None,
    container_name: str = "container",
    products: Callable[[str], str] | None = None,
) -> tuple[Shipment | None, list[str]]:
    """Every field, then the fields against each other (dates, amounts); (Shipment or None, errors).
    container: the [sensor] fields the container's record gives (board/container.sensor_defaults),
    or None (a file checked without a container must give them)."""
    err = _Errors()
    product_name = None
    head = doc.get("shipment")
    if isinstance(head, dict) and head.get("product") is not None:
        product_name = head["product"]
        merged = err.get(lambda: with_product(doc, source, product_name, products))
        if merged is not None:
            doc, duplicated = merged
            for message in duplicated:
                err.add(message)
    known_tables = ("shipment", "sensor", "logging", "dose_rate", "temperature")
    for key in doc:
        if key not in known_tables:
            err.add(f"{source}: [{key}]: unknown table (known tables: {', '.join(known_tables)})")
    for key in ("shipment", "sensor", "logging", "dose_rate"):
        if key not in doc and not (product_name is not None and key in PRODUCT_TABLES):
            err.add(f"{source}: [{key}]: missing table (required)")

    def table(name: str) -> _Table | None:
        if name not in doc:
            return None
        return err.get(lambda: _Table(source, name, doc[name]))

    s = table("shipment")
    ship_id = nuclide_name = activity = reference_time = None
    prescribed = tolerance = administration = expiry = declared = None
    exclusive = special_arrangement = False
    physical_form = transport_mode = None
    daughters = "equilibrium"
    if s is not None:
        ship_id = err.get(lambda: s.string("id"))
        err.get(lambda: s.string("product", required=False))
        if ship_id is not None and not printable_id(ship_id):
            err.get(lambda: s.fail("id", f"must be 1..32 printable ASCII characters without spaces, not {ship_id!r}"))
            ship_id = None
        nuc = err.get(lambda: s.parsed("nuclide", nuclides.get))
        nuclide_name = nuc.name if nuc is not None else None
        activity = err.get(lambda: s.parsed("activity", parse_activity_bq))
        if activity is not None and activity <= 0:
            err.get(lambda: s.fail("activity", "must be greater than zero"))
            activity = None
        reference_time = err.get(lambda: s.parsed("reference_time", shipment_time))
        prescribed = err.get(lambda: s.parsed("prescribed_activity", parse_activity_bq, required=False))
        tolerance = err.get(lambda: s.number("prescribed_tolerance", required=False, minimum=0.0, maximum=1.0))
        administration = err.get(lambda: s.parsed("administration_time", shipment_time, required=False))
        expiry = err.get(lambda: s.parsed("expiry_time", shipment_time, required=False))
        declared = err.get(lambda: s.string("declared_category", required=False, choices=CATEGORIES))
        exclusive = err.get(lambda: s.boolean("exclusive_use", False), False)
        physical_form = err.get(lambda: s.string("physical_form", required=False, choices=PHYSICAL_FORMS))
        transport_mode = err.get(lambda: s.string("transport_mode", required=False, choices=TRANSPORT_MODES))
        special_arrangement = err.get(lambda: s.boolean("special_arrangement", False), False)
        daughters = (
            err.get(lambda: s.string("daughters", required=False, choices=("equilibrium", "none"))) or "equilibrium"
        )
        err.get(s.finish)

    sen = table("sensor")
    position = surface_factor = one_metre_factor = cal = cal_nuclide = dead_time = background = None
    if sen is not None:
        position = err.get(lambda: sen.string("position", choices=POSITIONS))
        # The container's constants (board/container.py): given by its record when the file omits
        # them; a file that gives another value is refused (the container's record wins).
        from_container = container or {}
        needed = container is None
        surface_factor = err.get(lambda: sen.number("surface_factor", required=False, minimum=0.0, exclusive_min=True))
        surface_factor = _container_value(err, sen, "surface_factor", surface_factor, from_container, container_name)
        one_metre_factor = err.get(
            lambda: sen.number("one_metre_factor", required=False, minimum=0.0, exclusive_min=True)
        )
        one_metre_factor = _container_value(
            err, sen, "one_metre_factor", one_metre_factor, from_container, container_name
        )
        if position == "surface" and surface_factor is None:
            surface_factor = 1.0  # the reading is the surface dose rate
        if position == "1m" and one_metre_factor is None:
            one_metre_factor = 1.0  # the reading is the dose rate at 1 m
        cal = err.get(lambda: sen.number("calibration_cpm_per_usv_h", needed, minimum=0.0, exclusive_min=True))
        cal = _container_value(err, sen, "calibration_cpm_per_usv_h", cal, from_container, container_name)
        cal_nuclide = err.get(lambda: sen.string("calibration_nuclide", required=False))
        dead_time = err.get(lambda: sen.number("dead_time_us", needed, minimum=0.0, maximum=10_000.0))
        dead_time = _container_value(err, sen, "dead_time_us", dead_time, from_container, container_name)
        if not needed:
            for key, value in (("calibration_cpm_per_usv_h", cal), ("dead_time_us", dead_time)):
                if value is None and key not in from_container:
                    err.get(
                        lambda: sen.fail(key, f"missing: neither the file nor the {container_name}'s record gives it")
                    )
        background = err.get(lambda: sen.number("background_usv_h", required=False, minimum=0.0))
        err.get(sen.finish)

    lg = table("logging")
    interval = None
    if lg is not None:
        interval = err.get(lambda: lg.parsed("interval_s", parse_duration_s))
        if interval is not None and (not INTERVAL_MIN_S <= interval <= INTERVAL_MAX_S or interval != int(interval)):
            err.get(
                lambda: lg.fail(
                    "interval_s",
                    f"must be a whole number of seconds in {INTERVAL_MIN_S}..{INTERVAL_MAX_S}, not {interval:g}",
                )
            )
            interval = None
        err.get(lg.finish)

    dr = table("dose_rate")
    warn = alarm = None
    if dr is not None:
        warn = err.get(lambda: dr.number("warn_usv_h", minimum=0.0, exclusive_min=True))
        alarm = err.get(lambda: dr.number("alarm_usv_h", minimum=0.0, exclusive_min=True))
        if warn is not None and alarm is not None and warn > alarm:
            err.get(lambda: dr.fail("warn_usv_h", f"must not exceed alarm_usv_h ({alarm:g}), is {warn:g}"))
        err.get(dr.finish)

    rules: list[TemperatureRule] = []
    if "temperature" in doc:
        t = table("temperature")
        raw_rules: Any = []
        if t is not None:
            raw_rules = err.get(lambda: t.raw("rules", False)) or []
            err.get(t.finish)
            if not isinstance(raw_rules, list):
                err.get(lambda: t.fail("rules", "must be an array of tables ([[temperature.rules]])"))
                raw_rules = []
            elif len(raw_rules) > board_config.MAX_RULES:
                err.get(
                    lambda: t.fail(
                        "rules", f"at most {board_config.MAX_RULES} rules (the board's limit), not {len(raw_rules)}"
                    )
                )
        names: set[str] = set()
        for i, rr in enumerate(raw_rules):
            rule = err.get(lambda: _rule(source, i, rr, names))
            if rule is not None:
                rules.append(rule)

    # The fields against each other: dates in order, amounts that a shipment can hold.
    if s is not None:
        tol = 0.10 if tolerance is None else tolerance
        _cross_check(err, s, nuclide_name, activity, reference_time, prescribed, tol, administration, expiry, daughters)

    if err.items:
        return None, err.items
    assert ship_id is not None and nuclide_name is not None and activity is not None and reference_time is not None
    assert position is not None and cal is not None and dead_time is not None and interval is not None
    assert warn is not None and alarm is not None
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
        product=product_name if isinstance(product_name, str) else None,
    )
    try:  # the board's own check, last: whatever it would refuse is refused here, naming its field
        board_config.validate(ship.to_board_dict())
    except board_config.ConfigError as exc:
        return None, [f"{source}: the board would refuse this configuration: {exc}"]
    return ship, []


# Product templates (docs/shipment.md#product-templates): products/NAME.toml holds a product's
# temperature rules and dose-rate limits; a shipment file names it with [shipment] product = NAME.
PRODUCT_TABLES = ("dose_rate", "temperature")
PRODUCT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def product_file(name: str, source: str) -> Path:
    """products/NAME.toml in the shipment file's folder or the nearest parent folder that has one."""
    if not (1 <= len(name) <= 64 and set(name) <= PRODUCT_NAME_CHARS):
        raise UserError(f"must be a template name of lower-case letters, digits, - and _, not {name!r}")
    start = Path(source).resolve().parent
    for folder in (start, *start.parents):
        candidate = folder / "products" / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise UserError(f"no product template {name!r}: products/{name}.toml not found in {start} or a parent folder")


def product_text(name: str, source: str) -> str:
    """The template's text, looked up from the shipment file (product_file)."""
    return read_text(product_file(name, source))


def with_product(
    doc: dict[str, Any], source: str, name: Any, products: Callable[[str], str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The shipment document with its product template's tables, and an error for each table given
    both by the file and the template (the file's is kept, the error names the table)."""
    if not isinstance(name, str):
        raise UserError(f"{source}: [shipment] product: must be a string, not {name!r}")
    try:
        text = products(name) if products is not None else product_text(name, source)
    except UserError as exc:
        raise UserError(f"{source}: [shipment] product: {exc}") from None
    where = f"product template {name}"
    try:
        template = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: {where}: not valid TOML: {exc}") from None
    for key in template:
        if key not in (*PRODUCT_TABLES, "description"):
            raise UserError(f"{source}: {where}: [{key}]: not a template table (known: {', '.join(PRODUCT_TABLES)})")
    out = dict(doc)
    errors = []
    for key in PRODUCT_TABLES:
        if key not in template:
            continue
        if key in doc:
            errors.append(
                f"{source}: [{key}]: given both in the file and by {where}: remove it from the file "
                "(or the product line, to give every rule in the file)"
            )
            continue
        out[key] = template[key]
    return out, errors


def _container_value(
    err: _Errors, sen: _Table, key: str, given: float | None, record: dict[str, Any], name: str
) -> float | None:
    """The container's value for a [sensor] field, or the file's when the record has none; a file
    value that differs from the record is an error naming the field."""
    if key not in record:
        return given
    want = float(record[key])
    if given is not None and not math.isclose(given, want, rel_tol=1e-9, abs_tol=0.0):
        err.get(
            lambda: sen.fail(
                key,
                f"{given:g} differs from the {name}'s record ({want:g}): the container's record wins; "
                "remove the field from the file (or correct the record with `isolog container set`)",
            )
        )
    return want


def _rule(source: str, i: int, rr: Any, names: set[str]) -> TemperatureRule:
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
    return TemperatureRule(name, threshold, direction, allowed, kind)


def _cross_check(
    err: _Errors,
    s: _Table,
    nuclide: str | None,
    activity: float | None,
    reference: float | None,
    prescribed: float | None,
    tolerance: float,
    administration: float | None,
    expiry: float | None,
    daughters: str,
) -> None:
    """Dates in order (reference <= administration <= expiry) and a prescribed activity the
    shipment can deliver within its tolerance (the rule of compliance/delivery.py): the decay law
    (isolog.decay) from the reference activity to the administration time."""
    from isolog.units import format_activity, format_time

    if reference is not None and expiry is not None and expiry <= reference:
        err.get(
            lambda: s.fail(
                "expiry_time", f"{format_time(expiry)} is not after the reference_time {format_time(reference)}"
            )
        )
    if reference is not None and administration is not None and administration < reference:
        err.get(
            lambda: s.fail(
                "administration_time",
                f"{format_time(administration)} is before the reference_time {format_time(reference)}",
            )
        )
    if administration is not None and expiry is not None and administration > expiry:
        err.get(
            lambda: s.fail(
                "administration_time", f"{format_time(administration)} is after the expiry_time {format_time(expiry)}"
            )
        )
    if prescribed is not None and activity is not None:
        least = prescribed * (1.0 - tolerance)  # the least activity the prescription accepts
        if least > activity:
            err.get(
                lambda: s.fail(
                    "prescribed_activity",
                    f"{format_activity(prescribed)} is more than the shipment's activity {format_activity(activity)} "
                    f"(tolerance {tolerance * 100:g} %)",
                )
            )
        elif nuclide is not None and reference is not None and administration is not None:
            from isolog import decay

            held = float(decay.decay(nuclide, activity, [administration - reference], daughters=daughters)[nuclide][0])
            if least > held:
                err.get(
                    lambda: s.fail(
                        "prescribed_activity",
                        f"{format_activity(prescribed)} is more than the shipment holds at administration "
                        f"({format_activity(held)} at {format_time(administration)}; tolerance {tolerance * 100:g} %)",
                    )
                )
