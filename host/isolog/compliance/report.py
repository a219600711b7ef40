"""Shipment certificate: PDF (matplotlib, A4) or self-contained HTML with the same content.

Contents: shipment data, a verdict per rule with its source, summary statistics, temperature
plot (limits, excursions shaded), dose rate on a log scale with the expected decay curve and the
band a single reading should fall in, data-integrity notes, and the SHA-256 of the records file
the result was computed from (so the document can be checked against the data).
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: reports are written by command-line tools and CI

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from isolog import __version__  # noqa: E402
from isolog.compliance.model import CheckResult  # noqa: E402
from isolog.units import format_activity, format_duration, format_time  # noqa: E402

VERDICT_COLOURS = {"pass": "#1a7f37", "warn": "#b26b00", "fail": "#c62828", "unknown": "#6a1b9a", "n/a": "#666666"}
_MAX_PLOT_POINTS = 20_000  # readings drawn; more are thinned by a stride (the statistics use all)
_MAX_SHADED = 500  # excursion spans shaded


def _dates(epoch: ArrayLike) -> np.ndarray:
    return (np.asarray(epoch, dtype=np.float64) * 1e6).astype("datetime64[us]")


def _stride(n: int) -> int:
    return max(1, int(math.ceil(n / _MAX_PLOT_POINTS)))


def shipment_rows(result: CheckResult) -> list[tuple[str, str]]:
    s = result.shipment
    sen = s.sensor
    rows = [
        ("Shipment", s.id),
        (
            "Nuclide",
            f"{s.nuclide}, {format_activity(s.activity_bq)} at {format_time(s.reference_time)}"
            f" (daughters: {s.daughters})",
        ),
    ]
    if s.prescribed_activity_bq is not None:
        rows.append(
            (
                "Prescribed",
                f"{format_activity(s.prescribed_activity_bq)} ± {s.prescribed_tolerance * 100:g} %"
                + (f" at {format_time(s.administration_time)}" if s.administration_time else ""),
            )
        )
    if s.expiry_time is not None:
        rows.append(("Expiry", format_time(s.expiry_time)))
    rows += [
        ("Declared category", (s.declared_category or "not declared") + (", exclusive use" if s.exclusive_use else "")),
        (
            "Sensor",
            f"{sen.position}; surface factor {_opt(sen.surface_factor)}, 1 m factor {_opt(sen.one_metre_factor)}",
        ),
        (
            "Calibration",
            f"{sen.calibration_cpm_per_usv_h:g} cpm per µSv/h "
            f"({sen.calibration_nuclide or 'nuclide not stated'}), "
            f"dead time {sen.dead_time_us:g} us, background {sen.background_usv_h:g} µSv/h",
        ),
        ("Logging interval", format_duration(s.interval_s)),
        ("Temperature rules", "; ".join(f"{r.name}: {r.describe()}" for r in s.temperature_rules) or "none"),
        ("Configuration", no_paths(s.source)),
    ]
    return rows


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^/\\\s,;()]+)+[/\\]([^/\\\s,;()]+)")


def no_paths(text: str) -> str:
    """A text without the folders of this computer: a path shown by its file name only (a
    certificate leaves the site; where the store lies is nobody's business)."""
    return _PATH.sub(lambda m: m.group(1), str(text))


def _zone(result: CheckResult):
    from zoneinfo import ZoneInfo

    name = result.context.get("time_zone")
    return ZoneInfo(name) if name else timezone.utc


def local_time(result: CheckResult, when: float | str | None) -> str:
    """A time in the site's time zone with its UTC offset: '2026-11-27 06:00 CET (UTC+01:00)'."""
    if when is None:
        return "unknown"
    if isinstance(when, str):
        from isolog.units import parse_time

        when = parse_time(when)
    if not math.isfinite(when):
        return "unknown"
    dt = datetime.fromtimestamp(when, timezone.utc).astimezone(_zone(result))
    off = dt.strftime("%z")
    return f"{dt.strftime('%Y-%m-%d %H:%M')} {dt.tzname() or ''} (UTC{off[:3]}:{off[3:]})".replace("  ", " ")


def release_rows(result: CheckResult) -> list[tuple[str, str]]:
    """The container, the shipment's life, alarms and their acknowledgements, the QA decision."""
    from isolog.words import alarm_words

    c = result.context
    rows: list[tuple[str, str]] = []
    if c.get("device"):
        rows.append(
            (
                "Container",
                (f"{c['container']} (board {c['device']})" if c.get("container") else f"board {c['device']}")
                + ("" if c.get("container") else ", never provisioned: NOT AUTHENTICATED"),
            )
        )
    sensor = c.get("sensor")
    if sensor:
        rows.append(
            (
                "Sensor",
                f"{sensor['sensor_model']}, {sensor['cal_cpm_per_usv_h']:g} cpm per µSv/h, dead time "
                f"{sensor['dead_time_us']:g} µs; calibrated on {sensor['calibrated_on']}, calibration due "
                f"{sensor['calibration_due']}",
            )
        )
    events = c.get("events", [])
    win = result.series.get("window")
    for state in ("configured", "dispatched", "delivered", "returned"):
        found = [e for e in events if e["state"] == state]
        if not found:
            continue
        e = found[-1]
        when: float | str = e["time"]
        extra = ""
        if state == "dispatched" and e["details"].get("start_delay_s"):
            extra = f" (start delay {format_duration(e['details']['start_delay_s'])})"
            if win is not None and win.start_s is not None:
                when = win.start_s  # on the records' own timeline, as the rules judged it
        if state == "delivered":
            extra = f" ({e['details'].get('source', '')})"
        rows.append((state.capitalize(), f"{local_time(result, when)} by {e['by']}{extra}"))
    for f in c.get("forced", []):
        label = "Configured over data"
        if f.get("calibration_due"):
            label = f"Calibration overdue (due {f['calibration_due']})"
        rows.append((label, f"forced by {f['by']} at {local_time(result, f['time'])}: {f['reason']}"))
    rec = result.series.get("records")
    if rec is not None and len(rec):
        seen = [f for f in ("dose_warn", "dose_alarm", "temp_alarm", "temp_fault") if rec.has(f).any()]
        if rec.has("gm_silent").any():
            seen.append("gm_fault")
        rows.append(("Alarms in the records", alarm_words(seen) if seen else "none"))
    for a in c.get("acknowledgements", []):
        what = alarm_words(a["alarms"]) if a["alarms"] else "no alarm latched"
        rows.append(("Acknowledged", f"{what}: by {a['by']} at {local_time(result, a['time'])}"))
    d = c.get("decision")
    if d:
        rows.append(
            (
                "QA decision",
                f"{d['state'].upper()} by {d['by']} at {local_time(result, d['time'])}"
                + (f": {d['reason']}" if d.get("reason") else ""),
            )
        )
    return rows


def excursion_rows(result: CheckResult) -> list[tuple[str, str, str, str, str]]:
    """(rule, start, end, duration, peak) of every temperature excursion, in time order."""
    rec = result.series.get("records")
    t = result.series["timebase"].t if result.series.get("timebase") is not None else None
    out = []
    for t0, t1, name, violation in sorted(
        (result.series.get("temperature") or {}).get("excursions", []), key=lambda x: x[0]
    ):
        if not (math.isfinite(t0) and math.isfinite(t1)):
            continue
        peak = ""
        if rec is not None and t is not None:
            inside = np.isfinite(t) & (t >= t0) & (t <= t1) & np.isfinite(rec.temperature_c)
            if inside.any():
                rule = next((r for r in result.shipment.temperature_rules if r.name == name), None)
                vals = rec.temperature_c[inside]
                peak = f"{(vals.min() if rule and rule.direction == 'below' else vals.max()):.1f} °C"
        out.append(
            (
                name + (" (breaks the rule)" if violation else ""),
                local_time(result, t0),
                local_time(result, t1),
                format_duration(t1 - t0),
                peak,
            )
        )
    return out


SIGNATURE_LINES = (
    "QA decision:   [ ] release   [ ] reject        Reason: ________________________________",
    "Name: ______________________   Signature: ______________________   Date: ______________",
)


def _opt(x) -> str:
    return "not configured" if x is None else f"{x:g}"


def summary_rows(result: CheckResult) -> list[tuple[str, str]]:
    sm = result.summary

    def num(key, fmt, unit=""):
        v = sm.get(key)
        return "unknown" if v is None else (fmt.format(v) + unit)

    hl = sm.get("effective_half_life_h")
    hl_text = "unknown" if hl is None else f"{hl:.4g} ± {sm.get('effective_half_life_unc_h') or 0:.2g} h"
    if sm.get("expected_half_life_h"):
        hl_text += f" (expected {sm['expected_half_life_h']:.4g} h)"
    return [
        ("Records", f"{sm.get('records')} from {sm.get('first_time')} to {sm.get('last_time')}"),
        ("Max dose rate (sensor)", num("max_dose_rate_usv_h", "{:.4g}", " µSv/h")),
        (
            "Max surface / 1 m",
            f"{num('max_surface_dose_rate_usv_h', '{:.4g}', ' µSv/h')} / "
            f"{num('max_dose_rate_1m_usv_h', '{:.4g}', ' µSv/h')}",
        ),
        (
            "Transport index / category",
            f"{num('transport_index', '{:g}')} / {sm.get('required_category') or 'unknown'}",
        ),
        (
            "Temperature min / mean / max",
            f"{num('temperature_min_c', '{:.2f}')} / "
            f"{num('temperature_mean_c', '{:.2f}')} / "
            f"{num('temperature_max_c', '{:.2f}')} °C",
        ),
        ("Mean kinetic temperature", num("mkt_c", "{:.2f}", " °C") + " (dH/R 10,000 K)"),
        ("Effective half-life", hl_text),
        (
            "Activity at arrival",
            "unknown"
            if sm.get("activity_at_arrival_bq") is None
            else f"{format_activity(sm['activity_at_arrival_bq'])} at {sm.get('arrival_time')}",
        ),
        ("Time without records", format_duration(sm.get("uncovered_s") or 0.0)),
    ] + window_rows(result)


def window_rows(result: CheckResult) -> list[tuple[str, str]]:
    """The trip window and the data outside it (shown apart, judged by no rule)."""
    from isolog.compliance.window import describe_outside

    win = result.summary.get("trip_window")
    if not win:
        return [("Trip window", "all records (no start delay, no delivery time recorded)")]
    rows = [("Trip window", f"{win['how']}: {win['records']} records judged")]
    for line in describe_outside(result.summary.get("outside_window") or {}):
        label, _, text = line.partition(": ")
        rows.append((f"Not judged: {label}", text))
    return rows


# --- plots --------------------------------------------------------------------------------------


def plot_temperature(result: CheckResult, ax) -> None:
    rec = result.series["records"]
    t = result.series["timebase"].t
    ok = np.isfinite(t) & np.isfinite(rec.temperature_c)
    ax.set_title("Temperature", loc="left", fontsize=10)
    ax.set_ylabel("°C")
    if not ok.any():
        ax.text(0.5, 0.5, "no temperature readings with a known time", ha="center", transform=ax.transAxes)
        return
    st = _stride(int(ok.sum()))
    idx = np.flatnonzero(ok)[::st]
    tt, yy = _break_at_gaps(result, idx, rec.temperature_c)
    ax.plot(_dates(tt), yy, lw=0.9, color="#1f4e79", label="temperature")
    _shade_gaps(result, ax)
    _mark_window(result, ax)
    shaded = 0
    for t0, t1, _name, violation in result.series["temperature"].get("excursions", []):
        if shaded >= _MAX_SHADED or not (math.isfinite(t0) and math.isfinite(t1)):
            continue
        ax.axvspan(
            _dates([t0])[0],
            _dates([t1])[0],
            color="#c62828" if violation else "#f0a030",
            alpha=0.30 if violation else 0.20,
            lw=0,
        )
        shaded += 1
    for r in result.shipment.temperature_rules:
        ax.axhline(r.threshold_c, color="#c62828" if r.direction == "above" else "#1565c0", lw=0.8, ls="--")
        ax.annotate(
            f"{r.name} {'>' if r.direction == 'above' else '<'} {r.threshold_c:g} °C",
            xy=(1.0, r.threshold_c),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            ha="right",
            va="bottom",
            color="#444444",
        )
    lo = (
        min(float(np.nanmin(rec.temperature_c[ok])), *(r.threshold_c for r in result.shipment.temperature_rules))
        if result.shipment.temperature_rules
        else float(np.nanmin(rec.temperature_c[ok]))
    )
    hi = (
        max(float(np.nanmax(rec.temperature_c[ok])), *(r.threshold_c for r in result.shipment.temperature_rules))
        if result.shipment.temperature_rules
        else float(np.nanmax(rec.temperature_c[ok]))
    )
    pad = max(1.0, 0.08 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
    ax.grid(True, alpha=0.3)
    if result.series.get("window") is not None:
        ax.legend(fontsize=7, loc="upper right")
    _time_axis(ax)


def plot_dose(result: CheckResult, ax) -> None:
    rec = result.series["records"]
    t = result.series["timebase"].t
    dose = rec.dose_rate_usv_h
    ok = np.isfinite(t) & np.isfinite(dose) & (dose > 0)
    ax.set_title("Dose rate (sensor reading)", loc="left", fontsize=10)
    ax.set_ylabel("µSv/h")
    if not ok.any():
        ax.text(0.5, 0.5, "no dose-rate readings with a known time", ha="center", transform=ax.transAxes)
        return
    st = _stride(int(ok.sum()))
    tt = t[ok][::st]
    ax.plot(_dates(tt), dose[ok][::st], ".", ms=1.5, color="#1f4e79", alpha=0.6, label="readings")
    _shade_gaps(result, ax, label="no records")
    _mark_window(result, ax)
    over = np.isfinite(t) & rec.has("over_range")
    if over.any():
        ymax = float(np.nanmax(dose[ok]))
        ax.plot(
            _dates(t[over]),
            np.full(int(over.sum()), ymax),
            "^",
            color="#c62828",
            ms=4,
            label="over range (lower bound)",
        )
    dc = result.series.get("decay") or {}
    if dc:
        lo, hi = float(np.nanmin(t[ok])) - float(rec.interval_s[0]), float(np.nanmax(t[ok]))
        win = result.series.get("window")
        if win is not None:  # the fit is the trip's: drawn over the trip window
            lo = max(lo, win.start_s) if win.start_s is not None else lo
            hi = min(hi, win.end_s) if win.end_s is not None else hi
        grid = np.linspace(lo, max(hi, lo + 1.0), 400)
        shape = dc["shape_fn"](grid)
        expected = np.exp(dc["ln_amp"]) * shape
        bg = result.shipment.sensor.background_usv_h
        # Counts a reading at this rate would have: counts per (µSv/h) per interval from the data.
        counts = np.maximum(dc["counts_per_usv_h"] * (expected + bg), 1.0)
        rel = np.sqrt((2.0 * (expected + bg) / (expected * np.sqrt(counts))) ** 2 + (2.0 * dc["s_ln_amp"]) ** 2)
        nuc = result.shipment.nuclide
        ax.fill_between(
            _dates(grid),
            expected * np.exp(-rel),
            expected * np.exp(rel),
            color="#f0a030",
            alpha=0.25,
            lw=0,
            label="95 % band of a single reading",
        )
        ax.plot(_dates(grid), expected, color="#c62828", lw=1.2, label=f"expected decay ({nuc})")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(mticker.FuncFormatter(lambda v, _pos: f"{v:g}" if _few_decades(ax) else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    _time_axis(ax)


def _few_decades(ax) -> bool:
    lo, hi = ax.get_ylim()
    return lo > 0 and hi / lo < 20


def _break_at_gaps(result: CheckResult, idx: np.ndarray, values: np.ndarray):
    """Times and values of the records idx, with NaN inserted before every time gap so the line
    is not drawn across time that no record covers."""
    tb = result.series["timebase"]
    tt = tb.t[idx]
    yy = values[idx].astype(np.float64)
    cut = np.flatnonzero(tb.gap_before[idx] > 0)
    if cut.size:
        tt = np.insert(tt, cut, tt[cut] - 1.0)
        yy = np.insert(yy, cut, np.nan)
    return tt, yy


def _mark_window(result: CheckResult, ax) -> None:
    """Dispatch and delivery as vertical lines; the time outside the trip greyed."""
    win = result.series.get("window")
    if win is None:
        return
    t = result.series["timebase"].t
    known = t[np.isfinite(t)]
    if not known.size:
        return
    lo, hi = float(known.min()), float(known.max())
    if win.start_s is not None:
        ax.axvline(_dates([win.start_s])[0], color="#2e7d32", lw=1.0, label="dispatch")
        if win.start_s > lo:
            ax.axvspan(_dates([lo])[0], _dates([win.start_s])[0], color="#9e9e9e", alpha=0.25, lw=0)
    if win.end_s is not None:
        ax.axvline(_dates([win.end_s])[0], color="#6a1b9a", lw=1.0, label="delivery")
        if win.end_s < hi:
            ax.axvspan(_dates([win.end_s])[0], _dates([hi])[0], color="#9e9e9e", alpha=0.25, lw=0, label="not judged")


def _shade_gaps(result: CheckResult, ax, label: str | None = None) -> None:
    tb = result.series["timebase"]
    rec = result.series["records"]
    for n, i in enumerate(np.flatnonzero(tb.gap_before > 0)[:_MAX_SHADED]):
        t0, t1 = tb.t[i - 1], tb.t[i] - rec.interval_s[i]
        ax.axvspan(_dates([t0])[0], _dates([t1])[0], color="#9e9e9e", alpha=0.35, lw=0, label=label if n == 0 else None)


def _time_axis(ax) -> None:
    loc = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.tick_params(labelsize=7)


def figure_plots(result: CheckResult):
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8.27, 7.0), constrained_layout=True)
    plot_temperature(result, a1)
    plot_dose(result, a2)
    fig.text(
        0.01,
        0.003,
        "Times in UTC. Records whose time is unknown are not drawn (see data integrity).",
        fontsize=7,
        color="#555555",
    )
    return fig


# --- text content -------------------------------------------------------------------------------


def integrity_notes(result: CheckResult) -> list[str]:
    notes = []
    try:
        ev = result.rule("data_integrity").evidence
    except KeyError:
        return notes
    notes.extend(ev.get("problems", []))
    for g in ev.get("time_gaps", {}).get("items", [])[:8]:
        notes.append(f"gap {g['from']} .. {g['to']} ({format_duration(g['duration_s'])})")
    for g in ev.get("seq_gaps", {}).get("items", [])[:8]:
        notes.append(f"missing seq {g['after_seq'] + 1}..{g['before_seq'] - 1} ({g['missing']} records)")
    if not notes:
        notes.append("no gaps, clock valid throughout, no sensor faults")
    if result.summary.get("data_verification"):
        notes.append("data verification (MAC chain): " + str(result.summary["data_verification"]))
    return notes


def _generated() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- PDF ----------------------------------------------------------------------------------------


def write_pdf(result: CheckResult, path: str | Path) -> None:
    path = Path(path)
    pages = _text_pages(result)
    with PdfPages(
        path, metadata={"Title": f"Shipment certificate {result.shipment.id}", "Creator": f"isolog {__version__}"}
    ) as pdf:
        total = len(pages) + 1
        for i, fig in enumerate(pages, 1):
            _footer(fig, result, i, total)
            pdf.savefig(fig)
            plt.close(fig)
        fig = figure_plots(result)
        fig.suptitle(f"Shipment {result.shipment.id}: measurements", x=0.01, ha="left", fontsize=11)
        pdf.savefig(fig)
        plt.close(fig)


def write_pngs(result: CheckResult, path: str | Path, dpi: int = 110) -> list[Path]:
    """The PDF's pages as PNG images: NAME-1.png, NAME-2.png, ... (for a README or a quick look)."""
    path = Path(path)
    pages = _text_pages(result)
    total = len(pages) + 1
    out = []
    for i, fig in enumerate(pages, 1):
        _footer(fig, result, i, total)
        out.append(path.with_name(f"{path.stem}-{i}.png"))
        fig.savefig(out[-1], dpi=dpi)
        plt.close(fig)
    fig = figure_plots(result)
    fig.suptitle(f"Shipment {result.shipment.id}: measurements", x=0.01, ha="left", fontsize=11)
    out.append(path.with_name(f"{path.stem}-{total}.png"))
    fig.savefig(out[-1], dpi=dpi)
    plt.close(fig)
    return out


def _footer(fig, result: CheckResult, page: int, total: int) -> None:
    x = 0.06
    fig.text(x, 0.045, f"Records: {no_paths(result.records_source)}", fontsize=7, color="#333333")
    fig.text(
        x,
        0.03,
        "SHA-256 of the records file: " + (result.records_sha256 or "not computed (records not from a file)"),
        fontsize=7,
        family="monospace",
        color="#333333",
    )
    fig.text(
        x,
        0.015,
        f"Shipment {result.shipment.id}. Generated {_generated()} by isolog {__version__}. Times in rule details "
        f"are UTC; others in {_zone(result)}. Page {page} of {total}.",
        fontsize=7,
        color="#666666",
    )


class _Flow:
    """Text laid out top to bottom on A4 pages; a new page starts when one is full."""

    BOTTOM = 0.075

    def __init__(self):
        self.pages = []
        self._new()

    def _new(self):
        self.fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
        self.pages.append(self.fig)
        self.y = 0.965

    def need(self, dy: float):
        if self.y - dy < self.BOTTOM:
            self._new()

    def text(self, x, s, size=8.0, dy=0.0155, **kw):
        self.need(dy)
        self.fig.text(x, self.y, s, fontsize=size, va="top", **kw)
        self.y -= dy

    def row(self, x_key, key, x_val, lines, size=8.0, dy=0.0155, **kw):
        self.need(dy * max(1, len(lines)))
        self.fig.text(x_key, self.y, key, fontsize=size, color="#444444", va="top")
        for part in lines or [""]:
            self.fig.text(x_val, self.y, part, fontsize=size, va="top", **kw)
            self.y -= dy

    def space(self, dy):
        self.y -= dy


def _text_pages(result: CheckResult):
    f = _Flow()
    left = 0.06
    overall = result.overall
    f.text(left, "Shipment certificate", size=16, weight="bold", dy=0.03)
    f.text(
        left,
        f"{result.shipment.id}  ·  verdict: {overall.upper()}",
        size=12,
        weight="bold",
        color=VERDICT_COLOURS.get(overall, "black"),
        dy=0.03,
    )
    f.text(left, "Shipment", size=10.5, weight="bold", dy=0.022)
    for k, v in shipment_rows(result):
        f.row(left, k, left + 0.22, textwrap.wrap(v, 88))
    release = release_rows(result)
    if release:
        f.space(0.006)
        f.text(left, "Container, trip, alarms", size=10.5, weight="bold", dy=0.022)
        for k, v in release:
            f.row(left, k, left + 0.22, textwrap.wrap(v, 88))
    exc = excursion_rows(result)
    f.space(0.006)
    f.text(left, "Temperature excursions", size=10.5, weight="bold", dy=0.022)
    if not exc:
        f.text(left, "none in the trip window", size=8)
    else:
        cols = (left, left + 0.17, left + 0.41, left + 0.65, left + 0.76)
        f.need(0.0155)
        for x, head in zip(cols, ("rule", "start", "end", "duration", "peak")):
            f.fig.text(x, f.y, head, fontsize=7.5, weight="bold", va="top")
        f.space(0.0145)
        for row in exc[:30]:
            f.need(0.0135)
            for x, v in zip(cols, row):
                f.fig.text(x, f.y, v, fontsize=7.5, va="top")
            f.space(0.0135)
        if len(exc) > 30:
            f.text(left, f"and {len(exc) - 30} more (the records hold every one)", size=7.5)
    f.space(0.01)
    f.text(left, "Rules", size=10.5, weight="bold", dy=0.022)
    for r in result.rules:
        detail = textwrap.wrap(r.detail, 100)[:4]
        f.need(0.015 + 0.0135 * len(detail) + 0.0145)
        f.fig.text(
            left,
            f.y,
            r.verdict.upper(),
            fontsize=8,
            weight="bold",
            color=VERDICT_COLOURS.get(r.verdict, "black"),
            va="top",
        )
        f.text(left + 0.09, r.title, weight="bold", dy=0.015)
        for part in detail:
            f.text(left + 0.09, part, size=7.5, dy=0.0135)
        for i, part in enumerate(textwrap.wrap("source: " + r.source, 125)):
            f.text(left + 0.09, part, size=6.5, color="#666666", dy=0.0115 if i else 0.0125)
        f.space(0.002)
    f.space(0.008)
    f.need(0.022 + 0.0155 * 4)
    f.text(left, "Summary", size=10.5, weight="bold", dy=0.022)
    for k, v in summary_rows(result):
        f.row(left, k, left + 0.26, textwrap.wrap(v, 80))
    f.space(0.008)
    f.need(0.022 + 0.0135 * 3)
    f.text(left, "Data integrity", size=10.5, weight="bold", dy=0.022)
    for note in integrity_notes(result)[:24]:
        for part in textwrap.wrap("• " + note, 110)[:3]:
            f.text(left, part, size=7.5, dy=0.0135)
    f.space(0.015)
    f.need(0.022 + 0.03 * len(SIGNATURE_LINES))
    f.text(left, "Release (QA)", size=10.5, weight="bold", dy=0.022)
    for line in SIGNATURE_LINES:
        f.text(left, line, size=8.5, dy=0.03, family="monospace")
    return f.pages


# --- HTML ---------------------------------------------------------------------------------------


def _png_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(result: CheckResult) -> str:
    e = html.escape
    overall = result.overall
    rows_ship = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in shipment_rows(result))
    rows_rules = "".join(
        f"<tr><td class='v' style='color:{VERDICT_COLOURS.get(r.verdict, '#000')}'>{e(r.verdict.upper())}</td>"
        f"<td><b>{e(r.title)}</b><br>{e(r.detail)}<div class='src'>{e(r.source)}</div></td></tr>"
        for r in result.rules
    )
    rows_sum = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary_rows(result))
    rows_rel = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in release_rows(result))
    rows_exc = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in excursion_rows(result))
    exc_table = (
        "<table><tr><th>rule</th><th>start</th><th>end</th><th>duration</th><th>peak</th></tr>" + rows_exc + "</table>"
        if rows_exc
        else "<p>none in the trip window</p>"
    )
    signature = "<br>".join(e(line) for line in SIGNATURE_LINES)
    notes = "".join(f"<li>{e(n)}</li>" for n in integrity_notes(result))
    img = _png_data_uri(figure_plots(result))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Shipment certificate {e(result.shipment.id)}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }}
h1 {{ margin-bottom: 0.2em; }}
.verdict {{ font-size: 1.3em; font-weight: bold; color: {VERDICT_COLOURS.get(overall, "#000")}; }}
table {{ border-collapse: collapse; width: 100%; margin: 0.5em 0 1.2em; }}
th, td {{ text-align: left; vertical-align: top; padding: 0.25em 0.6em; border-bottom: 1px solid #ddd;
          font-size: 0.9em; }}
th {{ width: 14em; color: #444; font-weight: normal; }}
td.v {{ font-weight: bold; width: 6em; }}
.src {{ color: #777; font-size: 0.85em; }}
code {{ font-size: 0.85em; }}
img {{ width: 100%; }}
</style></head><body>
<h1>Shipment certificate</h1>
<div class="verdict">{e(result.shipment.id)} · verdict: {e(overall.upper())}</div>
<h2>Shipment</h2><table>{rows_ship}</table>
<h2>Container, trip, alarms</h2><table>{rows_rel}</table>
<h2>Temperature excursions</h2>{exc_table}
<h2>Rules</h2><table>{rows_rules}</table>
<h2>Summary</h2><table>{rows_sum}</table>
<h2>Measurements</h2><img alt="temperature and dose-rate plots" src="{img}">
<h2>Data integrity</h2><ul>{notes}</ul>
<h2>Release (QA)</h2><p><code>{signature}</code></p>
<p>Records: {e(no_paths(result.records_source))}<br>
SHA-256 of the records file: <code>{e(result.records_sha256 or "not computed (records not from a file)")}</code><br>
Generated {e(_generated())} by isolog {e(__version__)}. Times in rule details are UTC; others in
{e(str(_zone(result)))}.</p>
</body></html>
"""


def write_html(result: CheckResult, path: str | Path) -> None:
    Path(path).write_text(render_html(result), encoding="utf-8")
