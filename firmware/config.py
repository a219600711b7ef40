# The shipment configuration as the board keeps it: a JSON file in the data folder, written
# atomically (temporary file, then rename: littlefs renames are atomic). The host converts the
# shipment TOML (docs/shipment.md) with isolog.shipment.to_board_dict(); the board validates again,
# since nothing a host sends may put the logger into a bad state.
import json
import os

CONFIG_FILE = "config.json"

# The board's limits, shared with the host (isolog.shipment checks a shipment file against them, so a
# file `isolog check` accepts is never refused by `isolog configure`). Plausibility limits, not
# product limits. Field: (type, minimum, maximum).
NUMBERS = {
    "interval_s": (int, 10, 3600),
    "cal_cpm_per_usv_h": (float, 0.1, 100000.0),
    "dead_time_us": (float, 0.0, 10000.0),
    "background_usv_h": (float, 0.0, 100.0),
    "dose_warn_usv_h": (float, 0.0, 1e7),
    "dose_alarm_usv_h": (float, 0.0, 1e7),
}
MAX_RULES = 8
ID_MAX_LEN = 32
RULE_NAME_MAX_LEN = 16
THRESHOLD_MIN_C = -80  # below the DS18B20's -55 degC range end, room for other sensors; dry ice needs another
THRESHOLD_MAX_C = 150
ALLOWED_MAX_S = 30 * 86400


class ConfigError(ValueError):
    pass


def validate(cfg):
    """Check a configuration dict; return it normalised or raise ConfigError naming the field."""
    if not isinstance(cfg, dict):
        raise ConfigError("configuration must be an object")
    sid = cfg.get("id")
    if not isinstance(sid, str) or not 1 <= len(sid) <= ID_MAX_LEN:
        raise ConfigError("id: 1..%d characters required" % ID_MAX_LEN)
    out = {"id": sid}  # type: dict
    for key in NUMBERS:
        kind, lo, hi = NUMBERS[key]
        value = cfg.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key + ": number required")
        if kind is int and value != int(value):
            raise ConfigError(key + ": whole number required")
        if not lo <= value <= hi:
            raise ConfigError("%s: must be within %s..%s" % (key, lo, hi))
        out[key] = kind(value)
    if out["dose_warn_usv_h"] > out["dose_alarm_usv_h"]:
        raise ConfigError("dose_warn_usv_h: must not exceed dose_alarm_usv_h")
    rules = cfg.get("temp_rules", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise ConfigError("temp_rules: a list of at most %d rules required" % MAX_RULES)
    checked = []
    for i, rule in enumerate(rules):
        where = "temp_rules[%d]" % i
        if not isinstance(rule, list) or len(rule) != 5:
            raise ConfigError(where + ": [name, threshold_c, above|below, allowed_s, single|cumulative]")
        name, threshold, direction, allowed, kind = rule
        if not isinstance(name, str) or not 1 <= len(name) <= RULE_NAME_MAX_LEN:
            raise ConfigError(where + ": name of 1..%d characters required" % RULE_NAME_MAX_LEN)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not THRESHOLD_MIN_C <= threshold <= THRESHOLD_MAX_C
        ):
            raise ConfigError(where + ": threshold_c within %d..%d required" % (THRESHOLD_MIN_C, THRESHOLD_MAX_C))
        if direction not in ("above", "below"):
            raise ConfigError(where + ": direction must be above or below")
        if isinstance(allowed, bool) or not isinstance(allowed, (int, float)) or not 0 <= allowed <= ALLOWED_MAX_S:
            raise ConfigError(where + ": allowed_s within 0..%d required" % ALLOWED_MAX_S)
        if kind not in ("single", "cumulative"):
            raise ConfigError(where + ": type must be single or cumulative")
        checked.append([name, float(threshold), direction, int(allowed), kind])
    out["temp_rules"] = checked
    return out


def load(data_dir):
    """The stored configuration, or None when the board has none (or it is unreadable)."""
    try:
        with open(data_dir + "/" + CONFIG_FILE) as f:
            return validate(json.load(f))
    except (OSError, ValueError):
        return None


def store(data_dir, cfg):
    cfg = validate(cfg)
    atomic_write(data_dir + "/" + CONFIG_FILE, json.dumps(cfg))
    return cfg


def atomic_write(path, data):
    """Write a small file so that a power cut leaves either the old or the new content: a
    temporary file, then a rename (atomic on littlefs). data: str or bytes."""
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, (bytes, bytearray)) else "w") as f:
        f.write(data)
    os.rename(tmp, path)
