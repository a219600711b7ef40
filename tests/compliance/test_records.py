import json

import numpy as np
import pytest

from isolog.compliance import records, synthetic
from isolog.errors import UserError


def _line(**changes):
    rec = {
        "device": "abc",
        "seq": 0,
        "boot": 1,
        "time": "2026-11-26T08:01:00Z",
        "uptime_s": 60.0,
        "counts": 100,
        "interval_s": 60.0,
        "interval_counts": 100,
        "dose_rate_usv_h": 0.5,
        "temperature_c": 4.5,
        "flags": ["time_valid", "boot"],
    }
    rec.update(changes)
    return json.dumps(rec)


def _write(tmp_path, lines):
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_round_trip(tmp_path, ship):
    r = synthetic.generate(ship, 3600, 50.0, temperature_c=lambda t: 4 + t / 3600)
    p = tmp_path / "r.jsonl"
    p.write_text(records.to_json_lines(r))
    back = records.load(p)
    assert len(back) == 60
    np.testing.assert_array_equal(back.seq, r.seq)
    np.testing.assert_allclose(back.time_s, r.time_s)
    np.testing.assert_allclose(back.dose_rate_usv_h, r.dose_rate_usv_h)
    np.testing.assert_allclose(back.temperature_c, r.temperature_c)
    assert back.has("boot")[0] and not back.has("boot")[1]
    assert back.sha256 == records.sha256_file(p)


def test_nulls(tmp_path):
    p = _write(
        tmp_path,
        [_line(time=None, temperature_c=None, dose_rate_usv_h=None, flags=["boot", "temp_fault", "gm_silent"])],
    )
    r = records.load(p)
    assert np.isnan(r.time_s[0]) and np.isnan(r.temperature_c[0]) and np.isnan(r.dose_rate_usv_h[0])
    assert r.has("temp_fault")[0] and r.has("gm_silent")[0] and not r.has("time_valid")[0]


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "r.jsonl"
    p.write_text(content)
    with pytest.raises(UserError, match="no records"):
        records.load(p)


def test_unsorted(tmp_path):
    p = _write(tmp_path, [_line(seq=0), _line(seq=2), _line(seq=1)])
    with pytest.raises(UserError, match=r"line 3: seq 1 after 2: records are not in seq order"):
        records.load(p)


def test_duplicate(tmp_path):
    p = _write(tmp_path, [_line(seq=0), _line(seq=1), _line(seq=1)])
    with pytest.raises(UserError, match=r"lines 2 and 3: duplicate seq 1"):
        records.load(p)


def test_nan_temperature(tmp_path):
    p = _write(tmp_path, [_line(seq=0), _line(seq=1).replace('"temperature_c": 4.5', '"temperature_c": NaN')])
    with pytest.raises(UserError, match=r"line 2: NaN in a record: a missing reading is null"):
        records.load(p)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seq": "1"}, r"field 'seq' must be an integer"),
        ({"seq": 1.5}, r"field 'seq' must be an integer"),
        ({"interval_counts": True}, r"field 'interval_counts' must be an integer"),
        ({"interval_counts": -1}, r"field 'interval_counts' is negative"),
        ({"interval_s": 0}, r"field 'interval_s' must be > 0"),
        ({"temperature_c": "4.5"}, r"field 'temperature_c' must be a number or null"),
        ({"time": "2026-11-26 08:01"}, r"field 'time' must be UTC ISO 8601"),
        ({"time": "2026-13-26T08:01:00Z"}, r"field 'time' is not a valid time"),
        ({"flags": "boot"}, r"field 'flags' must be a list of strings"),
        ({"dose_rate_usv_h": 1e400}, r"Infinity in a record"),
    ],
)
def test_bad_fields(tmp_path, changes, message):
    p = _write(tmp_path, [_line(seq=0), _line(**{"seq": 1, **changes})])
    with pytest.raises(UserError, match="line 2: " + message):
        records.load(p)


def test_huge_literal_is_not_finite(tmp_path):
    p = _write(tmp_path, [_line(seq=0), _line(seq=1).replace('"dose_rate_usv_h": 0.5', '"dose_rate_usv_h": 1e400')])
    with pytest.raises(UserError, match=r"line 2: field 'dose_rate_usv_h' is not finite"):
        records.load(p)


def test_missing_field_and_not_json(tmp_path):
    bad = json.loads(_line(seq=1))
    del bad["uptime_s"]
    p = _write(tmp_path, [_line(seq=0), json.dumps(bad)])
    with pytest.raises(UserError, match=r"line 2: field 'uptime_s' is missing"):
        records.load(p)
    p = _write(tmp_path, [_line(seq=0), "{not json"])
    with pytest.raises(UserError, match=r"line 2: not a JSON object"):
        records.load(p)
    p = _write(tmp_path, ["[1, 2]"])
    with pytest.raises(UserError, match=r"line 1: not a JSON object"):
        records.load(p)


def test_several_devices(tmp_path):
    p = _write(tmp_path, [_line(seq=0), _line(seq=1, device="other")])
    with pytest.raises(UserError, match="several devices"):
        records.load(p)


def test_unknown_flags_are_kept_and_counted(tmp_path):
    p = _write(tmp_path, [_line(seq=0, flags=["boot", "future_flag"]), _line(seq=1, flags=["future_flag"])])
    r = records.load(p)
    assert r.unknown_flags == {"future_flag": 2}
    assert r.has("boot")[0]


def test_two_objects_on_one_line(tmp_path):
    p = _write(tmp_path, [_line(seq=0) + " " + _line(seq=1)])
    with pytest.raises(UserError, match="line 1: not a JSON object"):
        records.load(p)


# --- random JSON lines: a Records or one UserError, never another exception ----------------------------


def _json_values():
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.just(10**30),
        st.floats(),
        st.sampled_from([1e308, -1e308, 5e-324, 0.0]),
        st.text(max_size=30),
        st.sampled_from(["2026-11-26T08:01:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "x"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    )


def test_random_json_lines_give_records_or_one_user_error():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = json.loads(_line())
    field_names = st.sampled_from(sorted(base))
    record = st.dictionaries(field_names, _json_values(), max_size=4).map(lambda ch: {**base, **ch})
    lines = st.lists(
        st.one_of(
            record.map(lambda r: json.dumps(r, allow_nan=True)),
            st.text(max_size=40),
            _json_values().map(lambda v: json.dumps(v, allow_nan=True)),
        ),
        max_size=6,
    )

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(lines, st.sampled_from(["\n", "\r\n"]))
    def check(lines, sep):
        data = sep.join(lines).encode("utf-8", errors="surrogatepass")
        try:
            r = records.loads(data, source="fuzz.jsonl")
        except UserError as exc:
            assert str(exc).startswith("fuzz.jsonl") and "\n" not in str(exc)
        else:
            assert len(r) >= 1 and r.seq.dtype == np.int64

    check()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seq": 10**30}, r"field 'seq' must be an integer in 0\.\.9007199254740991"),
        ({"counts": 2**63}, r"field 'counts' must be an integer in 0\.\.9007199254740991"),
        ({"device": ["abc"]}, r"field 'device' must be a string or null"),
        ({"flags": [{"a": 1}]}, r"field 'flags' must hold strings, not \{'a': 1\}"),
        ({"time": "9999-12-31T23:59:59Z"}, r"field 'time' is out of range \(1970\.\.2199\)"),
        ({"uptime_s": 10**400}, r"field 'uptime_s' is not finite"),
    ],
)
def test_values_out_of_range_name_their_line(tmp_path, changes, message):
    p = _write(tmp_path, [_line(seq=0), _line(**{"seq": 1, **changes})])
    with pytest.raises(UserError, match="line 2: " + message):
        records.load(p)
