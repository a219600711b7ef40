"""The results table every bench prints: measure, value, goal, and pass/FAIL against the goal."""

from __future__ import annotations

HEAD = ("measure", "value", "goal", "result")


def row(rows: list, measure: str, value: str, goal: str, ok: bool | None) -> None:
    rows.append((measure, value, goal, "-" if ok is None else ("pass" if ok else "FAIL")))


def print_table(rows: list) -> None:
    widths = [max(len(str(r[i])) for r in rows + [HEAD]) for i in range(len(HEAD))]
    print("  ".join(h.ljust(w) for h, w in zip(HEAD, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
