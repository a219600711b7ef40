"""Bench: what authentication costs on the board, side by side in one run.

In the MicroPython unix port, with the firmware's own modules: the time and heap of one batch
commit's encoding (15 records, about the 16 a batch holds at 1-minute logging) with its chained
HMAC-SHA256, against the same encoding with the MAC computation taken out (mac.mac replaced by a
constant), and of checking one authenticated request. Heap is what the allocations of one operation
add up to (gc.mem_alloc before and after, collection disabled). Host-side verification is in bench/sync.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = r"""
import gc, time
import mac, record

KEY = bytes(range(32))
N = 300
buf = bytearray(record.MAX_CHUNK)
entries = []
for i in range(15):
    entries += [60000 + i, 4000 + i, record.encode_temp(4.0 + i / 10), 0]

def encode(chain):
    return record.encode_batch(buf, 100, 1, 60, True, 1795000000000, 120000, 123456, entries, 15, KEY, chain)

def measure(label):
    chain = record.CHAIN_START
    encode(chain)
    gc.collect(); gc.disable()
    a0 = gc.mem_alloc()
    encode(chain)
    alloc = gc.mem_alloc() - a0
    gc.enable(); gc.collect()
    t0 = time.ticks_us()
    for _ in range(N):
        size, chain = encode(chain)
    us = time.ticks_diff(time.ticks_us(), t0) / N
    print("RESULT", label, "%.1f" % us, alloc, size)

measure("with_mac")
real_mac = mac.mac
record.mac.mac = lambda key, *parts: b"\0" * 16
measure("without_mac")
record.mac.mac = real_mac

body = b'{"time_ms": 1795000000000}'
trailer = b"\x05\0\0\0"
DEV = b"\x15\x01\x0c\x00\x00\x00\x00\x01"
CHALLENGE = b"\x01" * 8
m = mac.request_mac(KEY, 3, trailer, DEV, CHALLENGE, body)  # bound to the board and its challenge
gc.collect(); gc.disable()
a0 = gc.mem_alloc()
ok = mac.equal(mac.request_mac(KEY, 3, trailer, DEV, CHALLENGE, body), m)
alloc = gc.mem_alloc() - a0
gc.enable()
t0 = time.ticks_us()
for _ in range(N):
    mac.equal(mac.request_mac(KEY, 3, trailer, DEV, CHALLENGE, body), m)
print("RESULT check_request", "%.1f" % (time.ticks_diff(time.ticks_us(), t0) / N), alloc, len(body) + 20)
"""


def run() -> dict[str, tuple[float, int, int]]:
    from tests.mp_helpers import micropython_binary  # noqa: E402  (the repository's own finder)

    exe = micropython_binary()
    if exe is None:
        raise SystemExit("the MicroPython unix port is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "auth_bench.py"
        script.write_text(_SCRIPT)
        env = dict(os.environ, HOME=tmp, MICROPYPATH=str(ROOT / "firmware"))
        proc = subprocess.run(
            [exe, "-X", "heapsize=256wK", str(script)], capture_output=True, text=True, env=env, timeout=300
        )
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            _, label, us, alloc, size = line.split()
            out[label] = (float(us), int(alloc), int(size))
    return out


def sync_verification() -> list[tuple[str, float, int]]:
    """Sync the same 10-day log from a held virtual board into fresh stores, with the MAC-chain
    check on and off (Store.verify replaced by a no-op), alternating, best of 3 each."""
    sys.path.insert(0, str(ROOT / "tests"))
    from isolog.board import sync as sync_mod
    from isolog.log.chain import ChainResult
    from isolog.sim.launcher import VirtualBoard
    from isolog.store import Store
    from sim_helpers import scenario

    real = Store.verify
    best = {"on": 1e9, "off": 1e9}
    records = 0
    with tempfile.TemporaryDirectory() as tmp:
        flash = Path(tmp) / "flash.img"
        with VirtualBoard(scenario(duration="10d"), flash, speed=0, until_end=True) as b:
            b.run()
        board = VirtualBoard(scenario(duration="10d"), flash, speed=0, hold_at_end=True, firmware="keep")
        board.start()
        try:
            for i in range(6):
                mode = "on" if i % 2 == 0 else "off"
                if mode == "off":
                    # the chain not checked: nothing verified, nothing failed (the sync's own work stays)
                    Store.verify = lambda *a, **k: ChainResult()  # type: ignore[assignment,method-assign]
                try:
                    r = sync_mod.sync(board.port, Path(tmp) / f"s{i}.sqlite3", set_clock=False)
                finally:
                    Store.verify = real  # type: ignore[method-assign]
                records = r.records_added
                best[mode] = min(best[mode], r.duration_s)
        finally:
            board.close()
    return [(m, best[m], records) for m in ("on", "off")]


def main() -> None:
    r = run()
    with_mac, without, check = r["with_mac"], r["without_mac"], r["check_request"]
    print("auth: cost on the board (MicroPython unix port, 64-bit host; a real RP2040/ESP32-S3 is slower)")
    print(f"  {'operation':34s} {'time/op':>10s} {'heap/op':>9s}")
    print(f"  {'batch commit encoding, with MAC':34s} {with_mac[0]:8.1f}us {with_mac[1]:7d} B")
    print(f"  {'batch commit encoding, no MAC':34s} {without[0]:8.1f}us {without[1]:7d} B")
    print(f"  {'MAC share of a commit':34s} {with_mac[0] / without[0]:8.2f}x  {with_mac[1] - without[1]:+6d} B")
    print(f"  {'check an authenticated request':34s} {check[0]:8.1f}us {check[1]:7d} B")
    print(
        f"  flash: the MAC adds 16 bytes to every {with_mac[2]}-byte batch chunk of 15 records "
        f"({16 / 15:.2f} B per record)"
    )
    rows = sync_verification()
    print("auth: sync of a 10-day log on the unlimited link, MAC chain verified on the host or not (best of 3)")
    for mode, secs, n in rows:
        print(f"  verification {mode:3s}: {secs:6.3f} s, {n / secs:9,.0f} records/s")
    print(f"  ratio on/off: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
