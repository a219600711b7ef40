"""`isolog user` and `isolog serve`'s argument checks: users are added with argon2id hashes (the
password from standard input or a terminal, never an argument), names are never reused, bad input
is one line and exit 2."""

from __future__ import annotations

import io
import sqlite3
import sys

import pytest
from argon2 import PasswordHasher

from isolog import cli


def _user_add(monkeypatch, db, *args: str, password: str = "a-good-password\n") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(password))
    return cli.main(["user", "add", *args, "--password-stdin", "--db", str(db)])


def test_user_add_stores_an_argon2id_hash(tmp_path, monkeypatch, capsys):
    db = tmp_path / "s.sqlite3"
    assert _user_add(monkeypatch, db, "quinn", "--role", "qa", "--full-name", "Quinn Quality") == 0
    assert "user quinn (Quinn Quality), role qa: added" in capsys.readouterr().out
    con = sqlite3.connect(db)
    (role, full, hashed) = con.execute("SELECT role, full_name, password_hash FROM web_users").fetchone()
    (action,) = con.execute("SELECT action FROM audit").fetchone()
    con.close()
    assert (role, full, action) == ("qa", "Quinn Quality", "user_add")
    assert hashed.startswith("$argon2id$") and "a-good-password" not in hashed
    assert PasswordHasher().verify(hashed, "a-good-password")
    assert cli.main(["user", "list", "--db", str(db)]) == 0
    assert capsys.readouterr().out.split() == ["quinn", "qa", "active", "Quinn", "Quality"]


@pytest.mark.parametrize(
    "args, password, message",
    [
        (("quinn", "--role", "qa"), "short\n", "too short: at least 10 characters"),
        (("Quinn!", "--role", "qa"), "a-good-password\n", "user name 'Quinn!'"),
    ],
)
def test_user_add_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys, args, password, message):
    assert _user_add(monkeypatch, tmp_path / "s.sqlite3", *args, password=password) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("isolog: error: ")


def test_a_user_name_is_never_reused(tmp_path, monkeypatch, capsys):
    db = tmp_path / "s.sqlite3"
    assert _user_add(monkeypatch, db, "sam", "--role", "staff") == 0
    assert _user_add(monkeypatch, db, "sam", "--role", "admin") == 2
    assert "user 'sam' exists already" in capsys.readouterr().err


def test_user_add_without_a_terminal_asks_for_password_stdin(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli.main(["user", "add", "sam", "--role", "staff", "--db", str(tmp_path / "s.sqlite3")]) == 2
    assert "--password-stdin" in capsys.readouterr().err


def test_serve_refuses_a_port_out_of_range(tmp_path, capsys):
    assert cli.main(["serve", "--db", str(tmp_path / "s.sqlite3"), "--port", "70000"]) == 2
    assert "a TCP port is 1..65535" in capsys.readouterr().err


def test_serve_refuses_a_negative_return_window(tmp_path, capsys):
    assert cli.main(["serve", "--db", str(tmp_path / "s.sqlite3"), "--return-days", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--return-days -1: a number of days, 0 or more" in err and "Traceback" not in err


def test_serve_passes_the_return_window_to_the_dashboard(tmp_path, monkeypatch, capsys):
    from isolog.web import app

    seen = {}
    monkeypatch.setattr(app, "serve", lambda *a: seen.__setitem__("return_days", a[-1]))
    db = tmp_path / "s.sqlite3"
    assert cli.main(["serve", "--db", str(db), "--return-days", "21"]) == 0 and seen["return_days"] == 21
    assert cli.main(["serve", "--db", str(db)]) == 0 and seen["return_days"] == 14  # the default window


def test_serve_refuses_a_port_in_use_in_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--db", str(tmp_path / "s.sqlite3"), "--port", str(port)])
    assert code == 2
    *notes, error = capsys.readouterr().err.splitlines()
    assert error.startswith(f"isolog: error: cannot listen on 127.0.0.1:{port}: ")
    assert [n for n in notes if not n.startswith("note: no users yet")] == []  # no traceback, no uvicorn log
