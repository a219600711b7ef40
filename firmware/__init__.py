# Host-side view of the firmware sources (package isolog_fw). Not deployed to boards: on a board the
# firmware modules are top-level (`import record`).
#
# The modules shared with the host (record layout, frame codec, counting physics, MAC, the
# configuration validator) run unchanged under CPython: each imports what MicroPython gives it with
# a local fallback (`try: from micropython import const / except ImportError:`), and imports its
# siblings relatively first (`from . import mac`), then flat as on a board. Importing this package
# puts nothing into sys.modules but its own modules.
