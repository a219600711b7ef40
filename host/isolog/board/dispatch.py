"""Guided dispatch at the sync station (issue 15 item 2): choose the product template, enter the
shipment id, activity and times, see a summary, confirm; the board is then configured by the same
function as `isolog configure` (board/configure.py), with the same refusals.

The answers are asked one at a time and each is checked at once, with the shipment file's own
parsers (shipment.py, units.py): a bad answer is one line, and the question is asked again. What
the desk entered becomes a shipment file (docs/shipment.md) written to the station's shipments
folder, so `isolog validate` and a reader see exactly what the board was configured with.

No terminal here: the questions go out through `write` and the answers come in through
`read_line` (a line with its end, "" at the end of input, as file.readline), so a test drives it
with scripted input and the command line (cli/station.py) passes stdin and stdout.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from isolog import nuclides, shipment
from isolog.board.configure import MAX_START_DELAY_S, Configured, configure, readiness
from isolog.board.container import overdue, sensor_defaults
from isolog.errors import UserError
from isolog.store import Store
from isolog.units import format_activity, format_duration, format_time, parse_activity_bq, parse_duration_s

_T = TypeVar("_T")

# Defaults the desk may take with Enter. Both are isolog choices, not regulations: Lu-177 is the
# product line isolog was built for (README), a record a minute is the interval of the example
# shipments (scenarios/shipments/*.toml) and within the board's 10..3600 s (firmware/config.py).
DEFAULT_NUCLIDE = "Lu-177"
DEFAULT_INTERVAL = "60s"
DEFAULT_POSITION = "surface"  # the logger taped to the package surface (docs/shipment.md [sensor])


class Cancelled(Exception):
    """The desk said no, or the input ended: nothing was configured."""


@dataclass(frozen=True)
class Template:
    name: str  # NAME of products/NAME.toml
    description: str
    text: str


@dataclass(frozen=True)
class Answers:
    template: str
    ship_id: str
    nuclide: str
    activity: str  # as entered (a number with its unit), checked
    reference_time_s: float
    declared_category: str | None  # None: not declared (the category rule then says what is required)
    position: str
    interval_s: int
    dispatch_s: float | None  # None: now


@dataclass(frozen=True)
class Dispatched:
    """A board configured at the station."""

    port: str
    configured: Configured
    file: Path  # the shipment file written from the answers
    answers: Answers


def find_products(start: Path | None = None) -> Path | None:
    """The products/ folder in start (default: the current folder) or the nearest parent that has
    one: where shipment files look for their templates (shipment.product_file)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "products").is_dir():
            return folder / "products"
    return None


def templates(folder: Path) -> list[Template]:
    """The product templates of folder (NAME.toml), by name; a file that is not a template (not
    TOML, a name shipment files cannot give) is refused in one line naming it."""
    out = []
    try:
        files = sorted(folder.glob("*.toml"))
    except OSError as exc:
        raise UserError(f"cannot read the product templates in {folder}: {exc.strerror or exc}") from None
    for f in files:
        if not (1 <= len(f.stem) <= 64 and set(f.stem) <= shipment.PRODUCT_NAME_CHARS):
            raise UserError(f"{f}: not a product template name (lower-case letters, digits, - and _)")
        text = shipment.read_text(f)
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{f}: not valid TOML: {exc}") from None
        out.append(Template(f.stem, str(doc.get("description") or "(no description)"), text))
    if not out:
        raise UserError(f"no product templates (NAME.toml) in {folder}")
    return out


class Prompt:
    """Questions and answers over two functions: write(text) and read_line() -> a line, "" at end."""

    def __init__(self, read_line: Callable[[], str], write: Callable[[str], Any]):
        self.read_line = read_line
        self.write = write

    def line(self, question: str) -> str:
        self.write(question)
        try:
            got = self.read_line()
        except (OSError, EOFError):  # no input at all (a service's stdin): as the end of input
            got = ""
        if not got:
            raise Cancelled("the input ended")
        return got.strip()

    def ask(self, question: str, check: Callable[[str], _T], default: str | None = None) -> _T:
        """Ask until check(answer) passes; its UserError is shown as one line. Enter takes default."""
        shown = f"{question} [{default}]: " if default is not None else f"{question}: "
        while True:
            text = self.line(shown) or (default or "")
            try:
                return check(text)
            except UserError as exc:
                self.write(f"  {exc}\n")

    def yes(self, question: str) -> bool:
        """A yes/no question; Enter is no."""
        return self.ask(question, _yes_no, "no")


def _yes_no(text: str) -> bool:
    t = text.lower()
    if t in ("y", "yes"):
        return True
    if t in ("n", "no"):
        return False
    raise UserError(f"answer yes or no, not {text!r}")


def _required(text: str) -> str:
    if not text:
        raise UserError("an answer is needed here")
    return text


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text in choices:
            return text
        raise UserError(f"one of {', '.join(choices)}, not {text!r}")

    return check


def _optional_choice(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        if not text:
            return None
        if text in choices:
            return text
        raise UserError(f"one of {', '.join(choices)} (Enter: none), not {text!r}")

    return check


def _template(items: list[Template]) -> Callable[[str], Template]:
    def check(text: str) -> Template:
        for i, t in enumerate(items, 1):
            if text in (str(i), t.name):
                return t
        raise UserError(f"a number 1..{len(items)} or a template name, not {text!r}")

    return check


def _nuclide(text: str) -> str:
    return nuclides.get(_required(text)).name


def _activity(text: str) -> str:
    bq = parse_activity_bq(_required(text))
    if not bq > 0:
        raise UserError("the activity must be greater than zero")
    return text


def _interval(text: str) -> int:
    lo, hi = shipment.INTERVAL_MIN_S, shipment.INTERVAL_MAX_S
    s = parse_duration_s(_required(text))
    if not (lo <= s <= hi and s == int(s)):
        raise UserError(f"a whole number of seconds in {lo:g}..{hi:g} (the board's limits), not {s:g}")
    return int(s)


def shipment_doc(a: Answers) -> dict[str, Any]:
    """The shipment file's tables from the answers (docs/shipment.md): the template gives the dose
    limits and temperature rules, the container's record the sensor constants (at configure)."""
    head: dict[str, Any] = {
        "id": a.ship_id,
        "product": a.template,
        "nuclide": a.nuclide,
        "activity": a.activity,
        "reference_time": format_time(a.reference_time_s),
    }
    if a.declared_category:
        head["declared_category"] = a.declared_category
    return {"shipment": head, "sensor": {"position": a.position}, "logging": {"interval_s": a.interval_s}}


def to_toml(doc: dict[str, Any]) -> str:
    """A shipment document of plain tables (strings and numbers) as TOML text. A JSON string is a
    valid TOML basic string (the same escapes)."""
    lines = ["# Entered at the isolog station (guided dispatch); the format is docs/shipment.md."]
    for table, fields in doc.items():
        lines.append(f"\n[{table}]")
        for key, value in fields.items():
            lines.append(f"{key} = {json.dumps(value) if isinstance(value, str) else repr(value)}")
    return "\n".join(lines) + "\n"


def summary(a: Answers, container: str, template: Template) -> list[str]:
    dispatch = "now" if a.dispatch_s is None else format_time(a.dispatch_s)
    return [
        f"  container       {container}",
        f"  product         {template.name}: {template.description}",
        f"  shipment        {a.ship_id}",
        f"  activity        {a.nuclide}, {format_activity(parse_activity_bq(a.activity))} "
        f"at {format_time(a.reference_time_s)}",
        f"  category        {a.declared_category or '(not declared)'}",
        f"  sensor          {a.position}, a record every {format_duration(a.interval_s)}",
        f"  dispatch        {dispatch}",
    ]


def guide(
    port: str,
    db: Path | str | None,
    products: Path,
    shipments: Path,
    prompt: Prompt,
    clock: Callable[[], float] = time.time,
    set_clock: bool = True,
) -> Dispatched | None:
    """Offer dispatch for the board on port and, when the desk says yes, ask the shipment, show it,
    and configure the board on confirmation. None: not configured (declined, cancelled, or
    refused: the reason written as one line). UserError: the board or the store failed."""
    write = prompt.write
    ready = readiness(port, db)
    if ready.refusals:
        for r in ready.refusals:
            write(f"{port}: not ready for dispatch: {r}\n")
        return None
    record = ready.record
    assert record is not None  # readiness refuses a container without one
    items = templates(products)
    by_name = {t.name: t.text for t in items}

    def product_text(name: str) -> str:
        if name not in by_name:
            raise UserError(f"no product template {name!r} in {products}")
        return by_name[name]

    try:
        if not prompt.yes(f"{port}: dispatch {ready.container} now?"):
            return None
        write("product templates:\n")
        for i, t in enumerate(items, 1):
            write(f"  {i}  {t.name}: {t.description}\n")
        template = prompt.ask("product template (number or name)", _template(items))

        def ship_id(text: str) -> str:
            if not shipment.printable_id(text):
                raise UserError(f"1..32 printable ASCII characters without spaces, not {text!r}")
            with Store(db) as store:
                reused = store.reused_id(text, ready.device)
            if reused:
                raise UserError(reused)
            return text

        sid = prompt.ask("shipment id", ship_id)
        nuclide = prompt.ask("nuclide", _nuclide, DEFAULT_NUCLIDE)
        activity = prompt.ask("activity at the reference time, with its unit (e.g. 7.4GBq)", _activity)
        reference = prompt.ask(
            "reference time of that activity (e.g. 2026-11-26T08:00:00Z)", lambda t: shipment.shipment_time(t)
        )
        category = prompt.ask(
            f"declared category ({', '.join(shipment.CATEGORIES)}; Enter: none)",
            _optional_choice(shipment.CATEGORIES),
        )
        position = prompt.ask(
            f"sensor position ({', '.join(shipment.POSITIONS)})", _choice(shipment.POSITIONS), DEFAULT_POSITION
        )
        interval = prompt.ask("record interval", _interval, DEFAULT_INTERVAL)

        def dispatch_time(text: str) -> float | None:
            now = clock()
            t = None if text.lower() == "now" else shipment.shipment_time(text)
            if t is not None and not now <= t <= now + MAX_START_DELAY_S:
                raise UserError(
                    f"{format_time(t)} is not between now ({format_time(now)}) and "
                    f"{MAX_START_DELAY_S / 86400:g} days from now"
                )
            when = datetime.fromtimestamp(now if t is None else t, timezone.utc)
            if overdue(record, when):
                raise UserError(
                    f"the calibration of {ready.container} is due {record['calibration_due']}: "
                    "it cannot leave later (have it calibrated first)"
                )
            return t

        dispatch = prompt.ask("dispatch time (ISO 8601 with a zone, or now)", dispatch_time, "now")
        answers = Answers(template.name, sid, nuclide, activity, reference, category, position, interval, dispatch)
        doc = shipment_doc(answers)
        source = str(shipments / f"{sid}.toml")
        _, errors = shipment.check_dict(doc, source, sensor_defaults(record), ready.container, product_text)
        if errors:
            for e in errors:
                write(f"{port}: not configured: {e}\n")
            return None
        write("\n".join(["shipment to configure:", *summary(answers, ready.container, template)]) + "\n")
        if not prompt.yes(f"configure {ready.container} for shipment {sid}?"):
            write(f"{port}: not configured (declined)\n")
            return None
    except Cancelled:
        write(f"\n{port}: not configured (the input ended)\n")
        return None
    path = Path(source)
    try:
        shipments.mkdir(parents=True, exist_ok=True)
        path.write_text(to_toml(doc), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the shipment file {path}: {exc.strerror or exc}") from None
    # The trip starts at the time entered; a time that passed while the desk read the summary
    # starts it now (configure takes a delay from now, 0..MAX_START_DELAY_S).
    delay = 0.0 if dispatch is None else min(MAX_START_DELAY_S, max(0.0, dispatch - clock()))
    try:
        done = configure(port, path, db, set_clock=set_clock, start_delay_s=delay, products=product_text)
    except UserError as exc:
        path.unlink(missing_ok=True)  # not configured: no file that looks like a shipment
        write(f"{port}: not configured: {exc}\n")
        return None
    return Dispatched(port, done, path, answers)


def for_station(
    db: Path | str | None, products: Path, shipments: Path, prompt: Prompt
) -> Callable[[Any], Dispatched | None]:
    """The station's dispatch hook (board/station.py watch): guide() for the port of each board done."""
    return lambda done: guide(done.port, db, products, shipments, prompt)
