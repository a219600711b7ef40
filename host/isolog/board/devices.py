"""Finding boards: USB serial ports of the boards isolog runs on, and running virtual boards."""

from __future__ import annotations

from typing import Any

from isolog.board.link import Link
from isolog.errors import UserError
from isolog.sim import launcher

# USB vendor ids of the boards isolog runs on (MicroPython's own USB serial).
USB_VENDORS = {
    0x2E8A: "Raspberry Pi RP2040 (MicroPython)",
    0x303A: "Espressif ESP32-S3 (MicroPython)",
}


def find_devices(identify: bool = False) -> list[dict[str, Any]]:
    """Every board found, as dicts (port, kind usb|virtual, name, ...); with identify, each board
    is asked for its device id, shipment and log bounds (or the error it gave)."""
    found: list[dict[str, Any]] = []
    try:
        from serial.tools import list_ports

        ports = list_ports.comports()
    except Exception:  # no serial support on this system: virtual boards only
        ports = []
    for p in sorted(ports, key=lambda p: p.device):
        if p.vid in USB_VENDORS:
            found.append(
                {
                    "port": p.device,
                    "kind": "usb",
                    "name": USB_VENDORS[p.vid],
                    "usb": f"{p.vid:04x}:{p.pid or 0:04x}",
                    "serial_number": p.serial_number,
                    "description": p.description,
                }
            )
    for v in launcher.running_boards():
        found.append(
            {
                "port": v["port"],
                "kind": "virtual",
                "name": "virtual board (isolog sim)",
                "flash": v.get("flash"),
                "pid": v.get("pid"),
            }
        )
    if identify:
        for d in found:
            try:
                with Link(d["port"], timeout_s=0.5, retries=1) as link:
                    ident = link.identify()
                d["device"] = ident.get("device")
                d["shipment"] = ident.get("config_id")
                d["container"] = ident.get("name")  # the name it was provisioned with
                d["log"] = ident.get("log")
            except UserError as exc:
                d["error"] = str(exc)
    return found
