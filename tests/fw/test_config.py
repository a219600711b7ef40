# On-board validation of the shipment configuration.
import config
import fsdir
from fwcheck import raises


def _good():
    return {
        "id": "LU-1",
        "interval_s": 60,
        "cal_cpm_per_usv_h": 153.8,
        "dead_time_us": 190.0,
        "background_usv_h": 0.1,
        "dose_warn_usv_h": 1500.0,
        "dose_alarm_usv_h": 2000.0,
        "temp_rules": [["high", 25, "above", 1800, "single"]],
    }


def test_valid_configuration_is_normalised():
    cfg = config.validate(_good())
    assert cfg["temp_rules"] == [["high", 25.0, "above", 1800, "single"]]
    assert isinstance(cfg["cal_cpm_per_usv_h"], float)


def _fails(change, word):
    cfg = _good()
    change(cfg)
    err = raises(config.ConfigError, config.validate, cfg)
    assert word in str(err), str(err)


def test_errors_name_the_field():
    _fails(lambda c: c.pop("id"), "id")
    _fails(lambda c: c.update(interval_s=5), "interval_s")
    _fails(lambda c: c.update(interval_s=60.5), "interval_s")
    _fails(lambda c: c.update(cal_cpm_per_usv_h="x"), "cal_cpm_per_usv_h")
    _fails(lambda c: c.update(dead_time_us=True), "dead_time_us")
    _fails(lambda c: c.update(dose_warn_usv_h=3000.0), "dose_warn_usv_h")
    _fails(lambda c: c.update(temp_rules=[["x", 1, "sideways", 0, "single"]]), "temp_rules[0]")
    _fails(lambda c: c.update(temp_rules=[["x", 1, "above", -1, "single"]]), "allowed_s")
    _fails(lambda c: c.update(temp_rules=[["x", 1, "above", 0, "sometimes"]]), "type")
    _fails(lambda c: c.update(temp_rules="no"), "temp_rules")
    raises(config.ConfigError, config.validate, [1, 2])


def test_store_and_load_atomically():
    d = fsdir.fresh()
    assert config.load(d) is None
    config.store(d, _good())
    assert config.load(d)["id"] == "LU-1"
    raises(config.ConfigError, config.store, d, {"id": ""})
    assert config.load(d)["id"] == "LU-1"  # a refused configuration leaves the stored one
