"""`isolog serve` (the fleet dashboard) and `isolog user` (its users): argparse and printing only;
the app is isolog.web (docs/dashboard.md)."""

from __future__ import annotations

import argparse
import sys

from isolog.cli import args as common
from isolog.cli.args import Spec
from isolog.errors import UserError
from isolog.web.queries import RETURN_DAYS


def _serve_args(p: argparse.ArgumentParser) -> None:
    common.db(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument(
        "--behind-tls",
        action="store_true",
        help="served through a TLS reverse proxy: session cookies are Secure (sent over HTTPS only) and the "
        "proxy's X-Forwarded-* headers are trusted (docs/dashboard.md)",
    )
    p.add_argument(
        "--return-days",
        type=int,
        default=RETURN_DAYS,
        metavar="N",
        help=f"the site's return window, a site policy setting (no regulation sets it): a container not back "
        f"(no return or sync recorded) N days after its delivery, or its dispatch when no delivery is recorded, "
        f"is marked an overdue return on the shipment list (default {RETURN_DAYS})",
    )


def cmd_serve(args) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: a TCP port is 1..65535")
    if args.return_days < 0:
        raise UserError(f"--return-days {args.return_days}: a number of days, 0 or more")
    from isolog.store import Store
    from isolog.web import accounts
    from isolog.web.app import serve

    with Store(args.db) as st:
        if not accounts.users(st):
            print(
                "note: no users yet: add one first, e.g. isolog user add NAME --role admin"
                + (f" --db {args.db}" if args.db else ""),
                file=sys.stderr,
            )
    print(f"isolog dashboard on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    serve(args.db, args.host, args.port, args.behind_tls, args.return_days)
    return 0


def _user_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a user (the password is asked for, or read from standard input)")
    add.add_argument("name", metavar="NAME", help="user id: lower-case letters, digits, . _ -")
    add.add_argument("--role", required=True, choices=("staff", "qa", "admin"), help="staff, qa (signs) or admin")
    add.add_argument("--full-name", help="the name printed with the user's signatures (default: NAME)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    common.db(add)
    ls = sub.add_parser("list", help="list the users")
    common.db(ls)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password: give it with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


def cmd_user(args) -> int:
    from isolog.store import Store
    from isolog.web import accounts

    if args.action == "add":
        accounts.check_name(args.name)  # before asking for a password
        password = _password(args.password_stdin)
        with Store(args.db) as st:
            u = accounts.add_user(st, args.name, args.role, password, args.full_name)
        print(f"user {u.name} ({u.full_name}), role {u.role}: added")
        return 0
    with Store(args.db) as st:
        for u in accounts.users(st):
            print(f"{u.name:<20} {u.role:<6} {'active' if u.active else 'off':<7} {u.full_name}")
    return 0


COMMANDS = {
    "serve": Spec("serve the fleet dashboard (web pages over the store)", _serve_args, cmd_serve),
    "user": Spec("add or list the dashboard's users", _user_args, cmd_user),
}
