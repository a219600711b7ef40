import json
from pathlib import Path

import pytest

from compliance_helpers import shipment_doc, to_toml
from isolog import shipment
from isolog.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_example_shipments_load():
    files = sorted((ROOT / "scenarios" / "shipments").glob("*.toml"))
    assert files
    for f in files:
        s = shipment.load(f)
        json.dumps(s.to_board_dict())


def test_to_board_dict(ship):
    d = ship.to_board_dict()
    assert d == {
        "id": "LU-TEST-0001",
        "interval_s": 60,
        "cal_cpm_per_usv_h": 153.8,
        "dead_time_us": 190.0,
        "background_usv_h": 0.1,
        "dose_warn_usv_h": 1500.0,
        "dose_alarm_usv_h": 2000.0,
        "temp_rules": [["high", 25.0, "above", 1800, "single"], ["freeze", 0.0, "below", 0, "single"]],
    }
    json.dumps(d)


def test_defaults_and_implied_factors():
    s = shipment.from_dict(shipment_doc(sensor__surface_factor=None, shipment__exclusive_use=None))
    assert s.sensor.surface_factor == 1.0  # implied by position = "surface"
    assert s.exclusive_use is False
    assert s.daughters == "equilibrium"
    assert s.prescribed_tolerance == 0.10
    assert s.physical_form is None and s.transport_mode is None and s.special_arrangement is False
    s = shipment.from_dict(
        shipment_doc(
            shipment__physical_form="special_form", shipment__transport_mode="rail", shipment__special_arrangement=True
        )
    )
    assert (s.physical_form, s.transport_mode, s.special_arrangement) == ("special_form", "rail", True)
    s = shipment.from_dict(
        shipment_doc(sensor__position="1m", sensor__one_metre_factor=None, sensor__surface_factor=None)
    )
    assert s.sensor.one_metre_factor == 1.0 and s.sensor.surface_factor is None
    s = shipment.from_dict(shipment_doc(sensor__one_metre_factor=None))
    assert s.sensor.one_metre_factor is None  # not guessed


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"shipment__id": None}, r"\[shipment\] id: missing"),
        ({"shipment__id": "has space"}, r"\[shipment\] id: must be 1..32 printable"),
        ({"shipment__id": "x" * 33}, r"\[shipment\] id"),
        ({"shipment__nuclide": "Xx-1"}, r"\[shipment\] nuclide: unknown nuclide"),
        ({"shipment__activity": "7.4"}, r"\[shipment\] activity: .*unit"),
        ({"shipment__activity": "-7.4GBq"}, r"\[shipment\] activity: .*negative"),
        ({"shipment__activity": "0GBq"}, r"\[shipment\] activity: must be greater than zero"),
        ({"shipment__reference_time": "2026-11-26T08:00:00"}, r"\[shipment\] reference_time: .*zone"),
        ({"shipment__declared_category": "YELLOW"}, r"\[shipment\] declared_category: must be one of"),
        ({"shipment__exclusive_use": "no"}, r"\[shipment\] exclusive_use: must be true or false"),
        ({"shipment__colour": "red"}, r"\[shipment\] colour: unknown field"),
        (
            {"shipment__physical_form": "powder"},
            r"\[shipment\] physical_form: must be one of solid, liquid, gas, special_form, not 'powder'$",
        ),
        (
            {"shipment__transport_mode": "ship"},
            r"\[shipment\] transport_mode: must be one of road, rail, sea, air, not 'ship'$",
        ),
        ({"shipment__special_arrangement": "yes"}, r"\[shipment\] special_arrangement: must be true or false"),
        ({"sensor__position": "inside"}, r"\[sensor\] position: must be one of surface, 1m, calibrated"),
        ({"sensor__dead_time_us": "fast"}, r"\[sensor\] dead_time_us: must be a number"),
        ({"sensor__dead_time_us": -1.0}, r"\[sensor\] dead_time_us: must be >= 0"),
        ({"sensor__calibration_cpm_per_usv_h": 0}, r"\[sensor\] calibration_cpm_per_usv_h: must be > 0"),
        ({"sensor__one_metre_factor": 0}, r"\[sensor\] one_metre_factor: must be > 0"),
        ({"logging__interval_s": 5}, r"\[logging\] interval_s: must be a whole number of seconds in 10..3600"),
        ({"logging__interval_s": "2h"}, r"\[logging\] interval_s"),
        ({"logging__interval_s": "1x"}, r"\[logging\] interval_s: cannot read duration"),
        ({"dose_rate__warn_usv_h": 3000.0}, r"\[dose_rate\] warn_usv_h: must not exceed alarm_usv_h"),
        ({"dose_rate__alarm_usv_h": None}, r"\[dose_rate\] alarm_usv_h: missing"),
    ],
)
def test_errors_name_the_field(shipment_file, changes, message):
    with pytest.raises(UserError, match=message):
        shipment.load(shipment_file(**changes))


def test_rule_errors(shipment_file):
    doc = shipment_doc()
    doc["temperature"]["rules"].append(dict(doc["temperature"]["rules"][0]))
    with pytest.raises(UserError, match=r"\[temperature.rules #3\] name: duplicate rule name 'high'"):
        shipment.load(shipment_file(doc))
    doc = shipment_doc()
    doc["temperature"]["rules"][1]["direction"] = "under"
    with pytest.raises(UserError, match=r"\[temperature.rules #2\] direction: must be one of above, below"):
        shipment.load(shipment_file(doc))
    doc = shipment_doc()
    doc["temperature"]["rules"][0]["allowed"] = "-5min"
    with pytest.raises(UserError, match=r"\[temperature.rules #1\] allowed: .*negative"):
        shipment.load(shipment_file(doc))


def test_missing_table_and_bad_toml(tmp_path):
    doc = shipment_doc()
    del doc["sensor"]
    p = tmp_path / "a.toml"
    p.write_text(to_toml(doc))
    with pytest.raises(UserError, match=r"\[sensor\]: missing table"):
        shipment.load(p)
    p.write_text("[shipment\nid = 1")
    with pytest.raises(UserError, match="not valid TOML"):
        shipment.load(p)
    with pytest.raises(UserError, match="cannot read shipment file"):
        shipment.load(tmp_path / "absent.toml")


# The host checks a shipment file against the board's own limits (firmware/config.py), so a file
# `isolog check` accepts is never refused by `isolog configure`. The cases below are where the two
# had drifted apart; the limits are written out here from the board's validator's contract.


def _rules(n, **over):
    rule = {"name": "high", "threshold_c": 25.0, "direction": "above", "allowed": "30min", "type": "single"}
    rule.update(over)
    return [dict(rule, name=f"r{i}") for i in range(n)]


@pytest.mark.parametrize(
    "rules, field",
    [
        (_rules(1, threshold_c=-90.0), "threshold_c"),  # the board takes -80..150 degC
        (_rules(9), "rules"),  # the board keeps at most 8 rules
        (_rules(1, allowed="31d"), "allowed"),  # the board allows at most 30 days
    ],
)
def test_the_board_limits_are_the_hosts(rules, field):
    doc = shipment_doc()
    doc["temperature"] = {"rules": rules}
    with pytest.raises(UserError) as err:
        shipment.from_dict(doc)
    assert field in str(err.value)


def test_a_dose_limit_the_board_refuses_is_refused_here():
    with pytest.raises(UserError) as err:
        shipment.from_dict(shipment_doc(dose_rate__warn_usv_h=2e7, dose_rate__alarm_usv_h=3e7))
    assert "board would refuse" in str(err.value) and "dose_warn_usv_h" in str(err.value)


def test_files_at_the_board_limits_are_accepted():
    doc = shipment_doc()
    doc["temperature"] = {"rules": _rules(8, threshold_c=-80.0, allowed="30d")}
    s = shipment.from_dict(doc)
    assert len(s.temperature_rules) == 8 and s.temperature_rules[0].threshold_c == -80.0


# --- random TOML: a Shipment or one UserError, never another exception ----------------------------------


def test_random_toml_text_and_documents_give_a_shipment_or_one_user_error():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from compliance_helpers import shipment_doc, to_toml
    from isolog import shipment
    from isolog.errors import UserError

    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**64), max_value=2**64),
        st.floats(),
        st.text(max_size=12),
        st.sampled_from(["7.4GBq", "1e400Bq", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "30min", "Lu-177"]),
    )
    values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    )
    base = shipment_doc()
    docs = st.sampled_from([(t, f) for t, body in base.items() if isinstance(body, dict) for f in body]).flatmap(
        lambda tf: values.map(lambda v: (tf, v))
    )

    def ok_or_user_error(fn):
        try:
            fn()
        except UserError as exc:
            assert "\n" not in str(exc).strip() or "TOML" in str(exc)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(docs, max_size=3))
    def check_docs(changes):
        doc = shipment_doc()
        for (table, fld), v in changes:
            doc[table][fld] = v
        ok_or_user_error(lambda: shipment.from_dict(doc, "fuzz.toml"))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.text(max_size=200), st.integers(0, 400))
    def check_text(noise, at):
        text = to_toml(base)
        ok_or_user_error(lambda: shipment.loads(text[:at] + noise + text[at:], "fuzz.toml"))

    @settings(max_examples=50, deadline=None)
    @given(st.integers(1, 20000), st.sampled_from(["[", "{a=", "[[", "{a={b="]))
    def check_nesting(depth, opener):
        closer = {"[": "]", "{a=": "}", "[[": "]]", "{a={b=": "}}"}[opener]
        ok_or_user_error(lambda: shipment.loads("x = " + opener * depth + "1" + closer * depth, "fuzz.toml"))

    check_docs()
    check_text()
    check_nesting()


# --- every error at once, fields against each other (issue 14) ---------------------------------------


def test_every_error_of_a_file_is_reported_at_once():
    doc = shipment_doc(
        shipment__id="has space",
        shipment__activity="lots",
        sensor__dead_time_us=-1.0,
        logging__interval_s=5,
        dose_rate__colour="red",
    )
    ship, errors = shipment.check_dict(doc, "f.toml")
    assert ship is None
    assert errors == [
        "f.toml: [shipment] id: must be 1..32 printable ASCII characters without spaces, not 'has space'",
        errors[1],
        "f.toml: [sensor] dead_time_us: must be >= 0, not -1.0",
        "f.toml: [logging] interval_s: must be a whole number of seconds in 10..3600, not 5",
        errors[4],
    ]
    assert errors[1].startswith("f.toml: [shipment] activity: ") and "lots" in errors[1]
    assert errors[4].startswith("f.toml: [dose_rate] colour: unknown field")
    with pytest.raises(UserError, match=r"\[shipment\] id: .*\(and 4 more: `isolog validate f.toml` lists them all\)"):
        shipment.from_dict(doc, "f.toml")


def test_dates_and_amounts_are_checked_against_each_other():
    # expiry before the reference time, administration after expiry
    _, errors = shipment.check_dict(shipment_doc(shipment__expiry_time="2026-11-25T08:00:00Z"), "f.toml")
    assert errors == [
        "f.toml: [shipment] expiry_time: 2026-11-25T08:00:00Z is not after the reference_time 2026-11-26T08:00:00Z",
        "f.toml: [shipment] administration_time: 2026-11-29T08:00:00Z is after the expiry_time 2026-11-25T08:00:00Z",
    ]
    _, errors = shipment.check_dict(shipment_doc(shipment__administration_time="2026-11-20T08:00:00Z"), "f.toml")
    assert errors == [
        "f.toml: [shipment] administration_time: 2026-11-20T08:00:00Z is before the reference_time 2026-11-26T08:00:00Z"
    ]
    # the case: 125 GBq prescribed from a 14.8 GBq shipment
    _, errors = shipment.check_dict(
        shipment_doc(shipment__activity="14.8GBq", shipment__prescribed_activity="125GBq"), "f.toml"
    )
    assert errors == [
        "f.toml: [shipment] prescribed_activity: 125 GBq is more than the shipment's activity 14.8 GBq (tolerance 10 %)"
    ]
    # Lu-177 (T1/2 6.647 d, isolog.nuclides) decays in the 3 days to administration to
    # 10.1193 GBq x 2^(-3/6.647) = 7.40 GBq: 7.4 GBq prescribed is deliverable, 8.3 GBq (7.47 GBq
    # at least, with 10 %) is not.
    assert shipment.check_dict(shipment_doc(), "f.toml")[1] == []
    _, errors = shipment.check_dict(shipment_doc(shipment__prescribed_activity="8.3GBq"), "f.toml")
    (e,) = errors
    assert e.startswith(
        "f.toml: [shipment] prescribed_activity: 8.3 GBq is more than the shipment holds at administration"
    )
    expected = 10.1193 * 2 ** (-3 / 6.647)
    assert f"({expected:.2g} GBq at 2026-11-29T08:00:00Z; tolerance 10 %)" in e


def test_validate_command_lists_every_error_and_exits_2(tmp_path, capsys):
    from isolog import cli

    bad = tmp_path / "bad.toml"
    bad.write_text(to_toml(shipment_doc(shipment__expiry_time="2026-11-25T08:00:00Z", logging__interval_s=5)))
    assert cli.main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}: [logging] interval_s: must be a whole number of seconds in 10..3600, not 5",
        f"{bad}: [shipment] expiry_time: 2026-11-25T08:00:00Z is not after the reference_time 2026-11-26T08:00:00Z",
        f"{bad}: [shipment] administration_time: 2026-11-29T08:00:00Z is after the expiry_time 2026-11-25T08:00:00Z",
        f"{bad}: 3 errors: fix them and check again",
    ]
    good = tmp_path / "good.toml"
    good.write_text(to_toml(shipment_doc()))
    assert cli.main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{good}: valid: shipment LU-TEST-0001, Lu-177 10.119 GBq at 2026-11-26T08:00:00Z, 2 temperature rules"
    )
    assert cli.main(["validate", str(tmp_path / "none.toml")]) == 2
    assert "cannot read shipment file" in capsys.readouterr().err


# --- the container's record and product templates (issue 14 item 3) ------------------------------


def test_the_containers_record_fills_the_sensor_constants_and_wins():
    from compliance_helpers import shipment_doc

    doc = shipment_doc(
        sensor__calibration_cpm_per_usv_h=None,
        sensor__dead_time_us=None,
        sensor__one_metre_factor=None,
    )
    record = {"calibration_cpm_per_usv_h": 120.5, "dead_time_us": 80.0, "one_metre_factor": 0.07}
    ship = shipment.from_dict(doc, "f.toml", record, "container crate-7 (board X)")
    assert ship.sensor.calibration_cpm_per_usv_h == 120.5
    assert ship.sensor.dead_time_us == 80.0
    assert ship.sensor.one_metre_factor == 0.07
    assert ship.to_board_dict()["cal_cpm_per_usv_h"] == 120.5
    # a file value that differs: every differing field is named
    doc = shipment_doc()  # gives 153.8 cpm per µSv/h, 190 µs, 0.04
    ship2, errors = shipment.check_dict(doc, "f.toml", record, "container crate-7 (board X)")
    assert ship2 is None
    assert [e.split(":")[1].strip() for e in errors] == [
        "[sensor] one_metre_factor",
        "[sensor] calibration_cpm_per_usv_h",
        "[sensor] dead_time_us",
    ]
    assert "153.8 differs from the container crate-7 (board X)'s record (120.5)" in errors[1]


def test_a_product_template_gives_the_rules_and_limits():
    from compliance_helpers import shipment_doc

    template = (
        '[dose_rate]\nwarn_usv_h = 10.0\nalarm_usv_h = 20.0\n\n[[temperature.rules]]\nname = "cold"\n'
        'threshold_c = 2.0\ndirection = "below"\nallowed = "1h"\ntype = "single"\n'
    )
    doc = shipment_doc(shipment__product="vaccine")
    del doc["dose_rate"], doc["temperature"]
    ship = shipment.from_dict(doc, "f.toml", products={"vaccine": template}.__getitem__)
    assert ship.product == "vaccine"
    assert ship.to_board_dict()["temp_rules"] == [["cold", 2.0, "below", 3600, "single"]]
    assert (ship.dose_warn_usv_h, ship.dose_alarm_usv_h) == (10.0, 20.0)
    doc["temperature"] = shipment_doc()["temperature"]
    _, errors = shipment.check_dict(doc, "f.toml", products={"vaccine": template}.__getitem__)
    assert errors == [
        "f.toml: [temperature]: given both in the file and by product template vaccine: remove it from the "
        "file (or the product line, to give every rule in the file)"
    ]
    bad = shipment_doc(shipment__product="Lu 177!")
    _, errors = shipment.check_dict(bad, "f.toml")
    assert errors[0].startswith("f.toml: [shipment] product: must be a template name")


def test_the_templated_example_equals_the_explicit_one_but_for_its_id():
    explicit = shipment.load(ROOT / "scenarios" / "shipments" / "lu177-lutathera.toml").to_board_dict()
    templated = shipment.load(ROOT / "scenarios" / "shipments" / "lu177-lutathera-templated.toml")
    assert templated.product == "lutathera"
    got = templated.to_board_dict()
    assert got.pop("id") == "LU-2026-11-0043" and explicit.pop("id") == "LU-2026-11-0042"
    assert got == explicit
