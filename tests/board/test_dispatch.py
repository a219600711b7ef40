"""The guided dispatch (board/dispatch.py) driven with scripted answers, on the in-process fake
board (tests/fakes.py): a board that is not ready is refused before any question; a reused id and
a dispatch date past the calibration are one line each and asked again; a no, or the end of the
input, configures nothing. The whole step at the station against a virtual board is in
tests/board/test_station.py."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

import fakes
from compliance_helpers import shipment_doc, template_config, to_toml
from fakes import FakeBoard, link_to, use_fake_ports
from isolog import cli, trip
from isolog.board import dispatch, provision
from isolog.board.container import checked_values, set_container
from isolog.store import Store
from isolog.units import format_time

PORT = "FAKE0"
DEV = fakes.DEVICE_ID.hex()
PRODUCTS = Path(__file__).resolve().parents[2] / "products"
NAME = "container crate-7 (board 15010c00000000f1)"


class Desk:
    """Scripted answers; what the guide wrote; how many answers it read."""

    def __init__(self, *lines: str):
        self.lines = list(lines)
        self.read = 0
        self.out: list[str] = []

    def read_line(self) -> str:
        if self.read >= len(self.lines):
            return ""  # the end of the input
        self.read += 1
        return self.lines[self.read - 1] + "\n"

    @property
    def text(self) -> str:
        return "".join(self.out)

    def prompt(self) -> dispatch.Prompt:
        return dispatch.Prompt(self.read_line, self.out.append)


def _record(due: date | None = None) -> dict:
    today = datetime.now(timezone.utc).date()
    return checked_values(
        "LND 7317",
        153.8,
        190.0,
        0.04,
        None,
        (today - timedelta(days=30)).isoformat(),
        (due or today + timedelta(days=365)).isoformat(),
    )


@pytest.fixture()
def desk(monkeypatch, tmp_path):
    board = FakeBoard()
    use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    provision.provision(PORT, "crate-7", db)
    return board, db


def _guide(db, tmp_path, desk_: Desk):
    return dispatch.guide(PORT, db, PRODUCTS, tmp_path / "shipments", desk_.prompt(), set_clock=False)


def _ship_file(tmp_path, ship_id: str) -> Path:
    p = tmp_path / f"{ship_id}.toml"
    p.write_text(to_toml(shipment_doc(shipment__id=ship_id)))
    return p


def test_a_board_that_is_not_ready_is_refused_before_any_question(desk, tmp_path):
    board, db = desk
    # no container record: the sensor constants of a shipment entered here come from it
    d = Desk("y")
    assert _guide(db, tmp_path, d) is None
    assert d.read == 0
    assert d.text == (
        f"{PORT}: not ready for dispatch: {NAME} has no container record in this store (sensor, calibration): "
        f"record it with `isolog container set {PORT} ...` first\n"
    )
    set_container(PORT, _record(), db)
    # records not synced and a latched alarm of its last shipment (as `isolog configure` refuses)
    assert cli.main(["configure", PORT, str(_ship_file(tmp_path, "LU-F")), "--db", str(db), "--no-clock"]) == 0
    board.temp_c = -2.0  # below the "freeze" rule (0 °C, no time allowed): the alarm latches
    board.run_for(2 * 3600)
    with link_to(board)[0] as link:
        log = link.identify()["log"]
    unsynced = log["next"] - log["synced"]
    assert unsynced >= 100  # two hours at a record a minute
    d = Desk("y")
    assert _guide(db, tmp_path, d) is None
    assert d.read == 0
    assert d.text == (
        f"{PORT}: not ready for dispatch: {NAME} still holds {unsynced} records of shipment LU-F not synced yet "
        f"(run `isolog sync {PORT}` first) and a latched temperature alarm of shipment LU-F not acknowledged "
        f"(review it, then `isolog ack-alarms {PORT}`)\n"
    )
    assert board.app.cfg["id"] == "LU-F"
    assert not (tmp_path / "shipments").exists()


def test_a_reused_id_is_asked_again_and_the_board_gets_the_answers(desk, tmp_path):
    board, db = desk
    set_container(PORT, _record(), db)
    assert cli.main(["configure", PORT, str(_ship_file(tmp_path, "LU-A")), "--db", str(db), "--no-clock"]) == 0
    board.run_for(3600)
    assert cli.main(["sync", PORT, "--db", str(db), "--no-clock"]) == 0  # LU-A is back: its id is spent
    d = Desk(
        "y",
        "1",  # lutathera
        "LU-A",  # used for the trip that just ended: asked again
        "LU B",  # a space: asked again
        "LU-B",
        "",  # Lu-177
        "7.4GBq",
        "2026-11-26T08:00:00Z",
        "",  # no declared category
        "1m",
        "",  # a record a minute
        "now",
        "y",
    )
    with Store(db) as st:
        why = st.reused_id("LU-A", DEV)  # what `isolog configure` says of the id
    got = _guide(db, tmp_path, d)
    assert got is not None, d.text
    assert d.read == len(d.lines)
    assert why and f"shipment id:   {why}\n" in d.text, d.text
    assert "  1..32 printable ASCII characters without spaces, not 'LU B'\n" in d.text
    # the board holds the answers, the template's limits and the container's record
    allowed_s = {"30min": 1800, "4h": 4 * 3600, 0: 0}
    with link_to(board)[0] as link:
        config = link.get_config()
    want = template_config(PRODUCTS / "lutathera.toml", "LU-B", 60, allowed_s)
    assert config is not None and {k: config[k] for k in want} == want
    assert got.file == tmp_path / "shipments" / "LU-B.toml"
    assert tomllib.loads(got.file.read_text()) == {
        "shipment": {
            "id": "LU-B",
            "product": "lutathera",
            "nuclide": "Lu-177",
            "activity": "7.4GBq",
            "reference_time": "2026-11-26T08:00:00Z",
        },
        "sensor": {"position": "1m"},
        "logging": {"interval_s": 60},
    }
    with Store(db) as st:
        row = st.shipments(DEV)[-1]
        life = trip.life(st, "LU-B")
    assert row["id"] == "LU-B" and row["product"] == (PRODUCTS / "lutathera.toml").read_text()
    assert life.start_delay_s == 0.0
    # the summary showed what was configured
    assert "  shipment        LU-B\n" in d.text and "  dispatch        now\n" in d.text


def test_a_dispatch_after_the_calibration_is_due_is_asked_again(desk, tmp_path):
    board, db = desk
    today = datetime.now(timezone.utc).date()
    set_container(PORT, _record(due=today), db)  # valid up to and including today
    tomorrow = format_time(datetime.now(timezone.utc).timestamp() + 86400)
    d = Desk("y", "lutathera", "LU-C", "", "7.4GBq", "2026-11-26T08:00:00Z", "", "", "", tomorrow, "", "yes")
    got = _guide(db, tmp_path, d)
    assert got is not None, d.text
    assert (
        f"  the calibration of {NAME} is due {today.isoformat()}: it cannot leave later (have it calibrated first)\n"
        in d.text
    )
    assert d.text.count("dispatch time (ISO 8601 with a zone, or now) [now]: ") == 2
    assert board.app.cfg["id"] == "LU-C"


FULL = ["y", "1", "LU-D", "", "7.4GBq", "2026-11-26T08:00:00Z", "", "", "", "now"]


@pytest.mark.parametrize(
    "lines, last",
    [
        ([""], None),  # Enter at the offer: no
        (FULL[:4], f"\n{PORT}: not configured (the input ended)\n"),  # the input ends at the activity
        ([*FULL, "no"], f"{PORT}: not configured (declined)\n"),  # no at the confirmation
    ],
)
def test_a_no_or_the_end_of_the_input_configures_nothing(desk, tmp_path, lines, last):
    board, db = desk
    set_container(PORT, _record(), db)
    d = Desk(*lines)
    assert _guide(db, tmp_path, d) is None
    assert d.read == len(lines)
    assert board.app.cfg is None or board.app.cfg.get("id") != "LU-D"
    assert not (tmp_path / "shipments").exists()
    with Store(db) as st:
        assert not st.shipments(DEV)
    if last is not None:
        assert d.text.endswith(last), d.text


def test_the_templates_are_the_product_files(tmp_path):
    names = [t.name for t in dispatch.templates(PRODUCTS)]
    assert names == sorted(p.stem for p in PRODUCTS.glob("*.toml"))
    (tmp_path / "Bad Name.toml").write_text('description = "x"\n')
    with pytest.raises(Exception, match="not a product template name"):
        dispatch.templates(tmp_path)
    assert dispatch.find_products(PRODUCTS / "..") == PRODUCTS.resolve()
