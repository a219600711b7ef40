"""`isolog decay`, `isolog check`, `isolog report` through isolog.cli.main: exit codes 0/1/2."""

import json

import numpy as np
import pytest

from compliance_helpers import shipment_doc, to_toml, write_records
from isolog import shipment
from isolog.cli import main
from isolog.compliance import synthetic


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    ship_path = d / "ship.toml"
    ship_path.write_text(to_toml(shipment_doc()))
    ship = shipment.load(ship_path)
    good = d / "good.jsonl"
    write_records(
        good,
        synthetic.generate(ship, 70 * 3600, 60.0, seed=11, temperature_c=lambda t: 8 + 3 * np.sin(t / 86400 * 6.283)),
    )
    hot = d / "hot.jsonl"
    write_records(
        hot,
        synthetic.generate(
            ship, 70 * 3600, 60.0, seed=12, temperature_c=lambda t: np.where((t > 7200) & (t < 10800), 30.0, 8.0)
        ),
    )
    return {"ship": ship_path, "good": good, "hot": hot, "dir": d}


def test_decay_text(capsys):
    assert main(["decay", "Lu-177", "7.4GBq", "--from", "2026-11-26T08:00:00Z", "--to", "72h"]) == 0
    out = capsys.readouterr().out
    assert "5.4114 GBq" in out and "2026-11-29T08:00:00Z" in out and "DDEP" in out


def test_decay_json_chain(capsys):
    assert main(["decay", "Mo-99", "10GBq", "--to", "22.84h", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [m["nuclide"] for m in out["members"]]
    assert names == ["Mo-99", "Tc-99m"]
    assert out["members"][0]["activity_bq"] == pytest.approx(10e9 * 2 ** (-22.84 / 65.924))
    assert out["elapsed_s"] == pytest.approx(22.84 * 3600)


def test_decay_iso_to(capsys):
    assert (
        main(["decay", "lu177", "200mCi", "--from", "2026-11-26T08:00:00Z", "--to", "2026-11-29T08:00:00Z", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["members"][0]["activity_bq"] == pytest.approx(0.2 * 3.7e10 * 5.4114 / 7.4, rel=1e-5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["decay", "Xx-1", "1GBq", "--to", "1h"], "unknown nuclide"),
        (["decay", "Lu-177", "--to", "1h", "--", "-1GBq"], "negative"),
        (["decay", "Lu-177", "7.4", "--to", "1h"], "unit"),
        (["decay", "Lu-177", "7.4GBq", "--to", "2026-11-29T08:00:00Z"], "cannot read time"),
        (["decay", "Lu-177", "7.4GBq", "--from", "yesterday", "--to", "1h"], "cannot read time"),
    ],
)
def test_decay_bad_input(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_check_of_a_records_file_is_never_compliant(files, capsys):
    # Every rule passes on good data, but a records file carries no MACs: nothing shows the records
    # are the board's, so the verdict cannot be better than unknown (exit 1), and the second
    # line of the table says why.
    assert main(["check", "--records", str(files["good"]), "--shipment", str(files["ship"])]) == 1
    out = capsys.readouterr().out
    assert "Verdict: UNKNOWN (exit 1)" in out and "transport.transport_index" in out
    assert out.splitlines()[3].startswith("Data: NOT VERIFIED: a records file carries no MACs")


def test_check_json(files, capsys):
    code = main(["check", "--records", str(files["good"]), "--shipment", str(files["ship"]), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["exit_code"] == 1 and out["verdict"] == "unknown"
    assert [r["name"] for r in out["rules"] if r["verdict"] != "pass"] == ["data_verification"]
    assert out["verification"]["method"] == "none"
    s = out["summary"]
    for key in (
        "transport_index",
        "required_category",
        "max_dose_rate_usv_h",
        "temperature_min_c",
        "temperature_max_c",
        "mkt_c",
        "effective_half_life_h",
    ):
        assert s[key] is not None, key
    assert s["transport_index"] == 0.3 and s["required_category"] == "II-YELLOW"
    assert {r["verdict"] for r in out["rules"] if r["name"] != "data_verification"} <= {"pass", "n/a"}
    assert all(r["source"] and "evidence" in r for r in out["rules"])
    assert len(out["records"]["sha256"]) == 64


def test_check_fails_exit_1(files, capsys):
    code = main(["check", "--records", str(files["hot"]), "--shipment", str(files["ship"]), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    failed = [r["name"] for r in out["rules"] if r["verdict"] == "fail"]
    assert failed == ["temperature.high"]


def test_check_bad_input_exit_2(files, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["check", "--records", str(empty), "--shipment", str(files["ship"])]) == 2
    assert "no records" in capsys.readouterr().err
    assert main(["check", "--records", str(files["good"]), "--shipment", str(tmp_path / "none.toml")]) == 2
    assert "cannot read shipment file" in capsys.readouterr().err
    assert main(["check", "--records", str(files["good"])]) == 2
    assert "--shipment required" in capsys.readouterr().err
    assert main(["check", "LU-1", "--db", str(tmp_path / "store.sqlite3")]) == 2
    assert "no shipment 'LU-1' in the store" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(to_toml(shipment_doc(sensor__position="inside")))
    assert main(["check", "--records", str(files["good"]), "--shipment", str(bad)]) == 2
    assert "[sensor] position" in capsys.readouterr().err


def test_report_pdf_and_html(files, capsys):
    from isolog.compliance.records import sha256_file

    digest = sha256_file(files["hot"])
    pdf = files["dir"] / "report.pdf"
    assert main(["report", "--records", str(files["hot"]), "--shipment", str(files["ship"]), "-o", str(pdf)]) == 0
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000
    html = files["dir"] / "report.html"
    assert main(["report", "--records", str(files["hot"]), "--shipment", str(files["ship"]), "-o", str(html)]) == 0
    text = html.read_text()
    assert digest in text and "data:image/png;base64," in text
    assert "Temperature rule &#x27;high&#x27;" in text and "FAIL" in text
    assert digest in capsys.readouterr().out


def test_report_bad_extension(files, capsys):
    assert main(["report", "--records", str(files["good"]), "--shipment", str(files["ship"]), "-o", "r.docx"]) == 2
    assert ".pdf, .html, or .png" in capsys.readouterr().err


def test_report_as_png_pages(files, tmp_path, capsys):
    out = tmp_path / "cert.png"
    assert main(["report", "--records", str(files["hot"]), "--shipment", str(files["ship"]), "-o", str(out)]) == 0
    pages = sorted(tmp_path.glob("cert-*.png"))
    assert [p.name for p in pages][0] == "cert-1.png" and len(pages) >= 2
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pages)
    assert f"cert-1.png .. {pages[-1].name}" in capsys.readouterr().out
