"""Wall-clock times for every record that can have one, and the gaps in coverage.

A record whose `time` is null was taken while the board's clock was not valid. Within one boot,
uptime_s runs continuously, so `time - uptime_s` (the boot's start in wall time) is the same for
every record of that boot. A null-time record is placed with that offset, taken from the nearest
*later* record of the same boot with a valid time (the usual case: the clock is set after boot by
a sync), or else from the nearest earlier one. A record whose boot never had a valid time cannot
be placed: it stays out of every time-based analysis, and the data-integrity rule says so.

A record's time is the end of the interval it covers: it stands for (time - interval_s, time].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isolog.compliance.records import Records

# A gap is time that no record covers, longer than this fraction of the configured interval;
# a "sparse" record covers more than SPARSE_FACTOR configured intervals on its own.
# Engineering choices, not from a standard; the data-integrity rule reports both as warnings.
GAP_FRACTION = 0.5
SPARSE_FACTOR = 1.5


@dataclass
class Timebase:
    t: np.ndarray  # float64 epoch s at the end of each record's interval; NaN: not placed
    placed: np.ndarray  # bool: time was null and has been placed from uptime_s
    unplaced: np.ndarray  # bool: time null and no valid time in its boot
    segment: np.ndarray  # int64: index of the run of records with the same boot
    gap_before: np.ndarray  # float64 s of uncovered time before each record (0 if none/unknown)
    sparse: np.ndarray  # bool: the record covers more than SPARSE_FACTOR configured intervals
    backwards: np.ndarray  # bool: the clock stepped back between the previous record and this one
    seq_missing_before: np.ndarray  # int64: records missing (seq gap) before each record

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.t)


def build(rec: Records, configured_interval_s: float) -> Timebase:
    n = len(rec)
    time_s = rec.time_s
    valid = np.isfinite(time_s)
    segment = np.concatenate(([0], np.cumsum(rec.boot[1:] != rec.boot[:-1])))

    offset = time_s - rec.uptime_s  # wall time of the boot's start, NaN where invalid
    idx = np.arange(n)
    # Index of the next valid record at or after i, and of the previous one at or before i.
    nxt = np.where(valid, idx, n)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    prv = np.where(valid, idx, -1)
    prv = np.maximum.accumulate(prv)

    t = time_s.copy()
    missing = ~valid
    if missing.any():
        seg_ext = np.append(segment, -1)  # index n -> no segment
        off_ext = np.append(offset, np.nan)
        use_next = missing & (nxt < n) & (seg_ext[np.minimum(nxt, n)] == segment)
        t[use_next] = rec.uptime_s[use_next] + off_ext[nxt[use_next]]
        use_prev = missing & ~use_next & (prv >= 0) & (segment[np.maximum(prv, 0)] == segment)
        t[use_prev] = rec.uptime_s[use_prev] + offset[prv[use_prev]]
    known = np.isfinite(t)
    placed = missing & known
    unplaced = missing & ~known

    gap_before = np.zeros(n)
    backwards = np.zeros(n, dtype=bool)
    if n > 1:
        both = known[1:] & known[:-1]
        dt = t[1:] - t[:-1]
        uncovered = dt - rec.interval_s[1:]
        g = np.where(both & (uncovered > GAP_FRACTION * configured_interval_s), uncovered, 0.0)
        gap_before[1:] = g
        backwards[1:] = both & (dt < 0)
    sparse = rec.interval_s > SPARSE_FACTOR * configured_interval_s
    # The first record of a boot covers the time since power-up; it is not "sparse" sampling.
    sparse &= ~rec.has("boot")
    seq_missing = np.zeros(n, dtype=np.int64)
    seq_missing[1:] = np.diff(rec.seq) - 1
    return Timebase(t, placed, unplaced, segment, gap_before, sparse, backwards, seq_missing)
