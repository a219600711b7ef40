"""A store holding one synced shipment that fails (the container sat at 30 °C for its hour: the
shipment's 25 °C rule breaks), made the way people make it: the virtual board configured and synced
with the real commands (as tests/cli/test_check_verification.py does); and the dashboard's users."""

from __future__ import annotations

import shutil
import time

import pytest

from isolog import cli

SHIP_ID = "LU-2026-11-0042"  # the built-in shipment (scenarios/shipments/lu177-lutathera.toml)
PASSWORDS = {"sam": "staff-password-1", "quinn": "qa-password-123", "ada": "admin-password-1"}
ROLES = {"sam": "staff", "quinn": "qa", "ada": "admin"}
FULL_NAMES = {"sam": "Sam Staff", "quinn": "Quinn Quality", "ada": "Ada Admin"}


@pytest.fixture(scope="session")
def synced_store(tmp_path_factory):
    """(path of the store, device id) with the failing shipment synced and three users."""
    from isolog.sim.launcher import VirtualBoard
    from isolog.store import Store
    from isolog.web import accounts
    from sim_helpers import SHIPMENT, scenario

    tmp = tmp_path_factory.mktemp("web")
    db = tmp / "store.sqlite3"
    sc = scenario(duration="1h", temperature={"points": [["0h", 30.0]], "noise_c": 0.1})
    sc["board_config"] = None
    b = VirtualBoard(sc, tmp / "flash.img", speed=0)
    b.start()
    try:
        assert cli.main(["provision", b.port, "--name", "container-17", "--db", str(db)]) == 0
        assert cli.main(["configure", b.port, str(SHIPMENT), "--db", str(db), "--no-clock"]) == 0
        time.sleep(1.0)
        assert cli.main(["sync", b.port, "--db", str(db), "--no-clock"]) == 0
    finally:
        b.close()
    with Store(db) as st:
        (device,) = [d["id"] for d in st.devices()]
        for name, role in ROLES.items():
            accounts.add_user(st, name, role, PASSWORDS[name], FULL_NAMES[name])
    return db, device


@pytest.fixture
def store_copy(synced_store, tmp_path):
    """A private copy of the synced store (tests that sign or issue do not see each other's)."""
    db, device = synced_store
    copy = tmp_path / "store.sqlite3"
    shutil.copyfile(db, copy)
    return copy, device


@pytest.fixture
def lives(store_db):
    """A store on each back end with web_helpers.LIVES's shipments (build_lives):
    (store, {shipment id: row}, the later certificate of LU-BACK as archived)."""
    from isolog.store import Store
    from web_helpers import build_lives

    with Store(store_db) as st:
        rows, last = build_lives(st)
        yield st, rows, last
