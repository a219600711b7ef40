# Append-only log store on littlefs.
#
# Records wait in RAM and are committed in batches, one write + flush per batch: flush() is
# littlefs's commit point, and committing record by record costs ~33x write amplification
# (docs/references.md#littlefs). A power cut loses at most the batch in RAM (at most
# BATCH_RECORDS samples or COMMIT_AGE_MS, whichever comes first); what was committed survives.
#
# Files, in <data>/log/: one segment file per boot or per SEGMENT_BYTES, named by the sequence
# number of its first record ("%08x.seg"), each starting with a header chunk (record.py).
# Sequence numbers are assigned at commit, so the numbers on flash stay contiguous across power
# cuts. <data>/synced holds the first sequence number the host has not yet acknowledged.
# <data>/seq holds the sequence number after the last commit (the high-water mark, written
# atomically after each commit): at boot the next number is the larger of it and what the scan of
# the segments finds, so a damaged tail, a copied or deleted segment never make the board issue a
# sequence number twice (the host would see two different records under one number).
#
# Flash-full policy: a segment is deleted only when every record in it has been acknowledged by a
# host (synced). When the flash is full and nothing can be reclaimed, logging goes on in RAM as a
# single accumulating record (counts and time add up, so the dose integral is not lost) that is
# written with F_DATA_DROPPED as soon as space returns; the board shows "fault" and every record
# carries F_STORAGE_LOW from STORAGE_LOW_FRACTION on. Unsynced records are never overwritten.
import os

import config
import record

try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


BATCH_RECORDS = const(32)
COMMIT_AGE_MS = const(900_000)  # 15 min: a power cut loses at most this much
SEGMENT_BLOCKS = const(8)  # a segment fills whole flash blocks: 32 KiB on 4 KiB blocks
STORAGE_LOW_FRACTION = 0.25  # below this share of free space: storage_low (sync soon)
_RESERVE_BLOCKS = const(4)  # littlefs needs free blocks for copy-on-write metadata


def _read_int(path, default):
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return default


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _names(folder):
    """File names in a folder without building the whole listing at once where the board can
    (os.ilistdir): a board that lost power often holds many segments."""
    ilistdir = getattr(os, "ilistdir", None)
    if ilistdir is None:  # CPython
        return os.listdir(folder)
    return (entry[0] for entry in ilistdir(folder))


def key_id_hex(key):
    return record.key_id(key).hex()


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def bump_boot_counter(data_dir):
    path = data_dir + "/boot"
    boot = (_read_int(path, 0) + 1) & 0xFFFF
    config.atomic_write(path, str(boot))
    return boot


def allocate_buffer():
    """The log store's one buffer (batch encoding, recovery window): 2 chunks."""
    return bytearray(2 * record.MAX_CHUNK)


class LogStore:
    def __init__(
        self,
        data_dir,
        boot,
        device_id,
        batch_records=BATCH_RECORDS,
        segment_blocks=SEGMENT_BLOCKS,
        key=b"",
        feed=None,
        buf=None,
    ):
        self.data_dir = data_dir
        # Called through long work (the recovery scan of every damaged segment) to feed the
        # board's watchdog: the worst case reads the whole log.
        self.feed = feed
        self.dir = data_dir + "/log"
        if not _exists(self.dir):
            os.mkdir(self.dir)
        self.boot = boot
        self.device_id = device_id
        self.key = key  # the device key (mac.py chain); empty until the board is provisioned
        self.chain = record.CHAIN_START  # mac of the last chunk written
        self.batch_records = batch_records
        self.segment_blocks = segment_blocks
        self.segments = sorted(int(n[:8], 16) for n in _names(self.dir) if n.endswith(".seg"))
        self.synced = _read_int(data_dir + "/synced", 0)
        self.next_seq = 0
        self.recovered_damage = 0
        # Batch in RAM: flat [interval_ms, interval_counts, temp_code, flags] per record.
        self.entries = [0] * (4 * batch_records)
        self.count = 0
        self.batch_clock_valid = False
        self.batch_clock_offset = 0
        self.batch_base_uptime = 0
        self.batch_base_counts = 0
        self.batch_started_ms = 0
        # One buffer for encoding batches and, at boot, as the window of the recovery scan; main.py
        # allocates it first on an unfragmented heap (allocate_buffer), like the link's buffers.
        self.buf = buf if buf is not None else allocate_buffer()
        self.file = None  # the open segment of this boot
        self.segment_first = None  # its first sequence number (its name)
        self.file_size = 0
        self.header = None  # (interval_s, cal, dead_time_us, background) of this boot's segments
        self.config = None  # the configuration in use: its file goes into a "C" chunk after each header
        self.config_path = data_dir + "/" + config.CONFIG_FILE
        self.hwm_path = data_dir + "/seq"
        self.skipped = 0  # sequence numbers the high-water mark skipped at boot (lost records)
        self.full = False
        self.low = False
        # The filesystem's block size (the board's erase block): set by _space() (os.statvfs), which
        # every commit calls before it writes. Not read here: littlefs answers statvfs by walking
        # every file on the flash (lfs_fs_size), which a wake from deep sleep need not pay.
        self.block_size = 0
        self.dropped = 0  # samples folded into the pending record while the flash was full
        self.write_errors = 0

    # --- boot ----------------------------------------------------------------------------------

    def recover(self):
        """Find the next sequence number from the last segment: scan it, skip damage, take the
        highest sequence number any intact batch carries. A new segment always starts for this
        boot, so nothing is appended after a damaged or torn tail."""
        self.next_seq = self.segments[-1] if self.segments else 0
        for first in reversed(self.segments):
            last, chain = self._scan_last_seq(first)
            if chain is not None and self.chain == record.CHAIN_START:
                self.chain = chain  # the chain goes on from the last intact chunk
            if last is not None:
                self.next_seq = last + 1
                break
            # An empty or unreadable last segment: its name still says where it started.
            self.next_seq = max(self.next_seq, first)
        if self.segments and self.segments[-1] > self.next_seq:
            self.next_seq = self.segments[-1]  # a segment never holds numbers below its name
        hwm = _read_int(self.hwm_path, 0)
        if hwm > self.next_seq:
            # Records up to the mark were issued (damaged tail, copied or removed segment): go on
            # after them; the host sees the numbers in between as missing.
            self.skipped = hwm - self.next_seq
            self.next_seq = hwm
        if self.synced > self.next_seq:
            self.synced = self.next_seq
        self.update_space()
        return self.next_seq

    def _save_hwm(self):
        try:
            config.atomic_write(self.hwm_path, str(self.next_seq))
        except OSError:
            self.write_errors += 1  # the scan at boot still finds the committed records

    def _scan_last_seq(self, first):
        """(highest sequence number, mac of the last intact chunk) in a segment; None if none."""
        last = None
        chain = None
        with open(self._path(first), "rb") as f:
            reader = record.ChunkReader(f, self.buf, self.feed)
            while True:
                got = reader.next()
                if got is None:
                    break
                kind, start, length = got
                chain = record.chunk_mac(reader.buf, start, length)
                if kind == record.KIND_BATCH:
                    try:
                        info, _ = record.decode_batch(reader.buf, start, length)
                    except record.RecordError:
                        continue
                    end_seq = info[0] + info[1] - 1
                    if last is None or end_seq > last:
                        last = end_seq
            self.recovered_damage += len(reader.damage)
        return last, chain

    def resume(self, saved, entries):
        """Instead of recover(), after a wake from deep sleep (firmware/sleep.py): go on in the
        segment this boot was writing, with the chain and the batch saved in RTC memory. False
        (nothing changed) unless the flash is exactly as it was left: the same high-water mark and,
        if a segment was open, the same length; the caller then boots normally."""
        (seq, chain, seg, size, n, clock_valid, clock_offset, base_uptime, base_counts, started) = saved[:10]
        if _read_int(self.hwm_path, 0) != seq or n > self.batch_records or len(entries) != 4 * n:
            return False
        f = None
        if seg:
            path = self._path(seg - 1)
            try:
                if os.stat(path)[6] != size:
                    return False
                f = open(path, "ab")
            except OSError:
                return False
        self.next_seq = seq
        self.chain = chain
        self.file = f
        self.segment_first = seg - 1 if seg else None
        self.file_size = size
        self.count = n
        e = self.entries
        for i in range(4 * n):
            e[i] = entries[i]
        self.batch_clock_valid = bool(clock_valid)
        self.batch_clock_offset = clock_offset
        self.batch_base_uptime = base_uptime
        self.batch_base_counts = base_counts
        self.batch_started_ms = started
        self.dropped, self.skipped, self.write_errors, self.recovered_damage = saved[10:14]
        # The free-space state as the sleep left it: the flash is as it was (checked above).
        self.full, self.low = bool(saved[14]), bool(saved[15])
        if self.synced > seq:
            self.synced = seq
        return True

    def set_key(self, key):
        """Write with a new key from now on, in a new segment (its header names the key)."""
        self.commit()
        self._close_segment()
        self.key = key

    def _path(self, first_seq):
        return "%s/%08x.seg" % (self.dir, first_seq)

    # --- logging -------------------------------------------------------------------------------

    def set_header(self, interval_s, cal, dead_time_us, background, cfg=None):
        """Calibration the records of this boot are written with (stored in each segment header,
        so a dump computes the same dose rates as the board), and the whole configuration (a "C"
        chunk after each header: the thresholds and rules are covered by the MAC too)."""
        header = (interval_s, cal, dead_time_us, background)
        if header != self.header or cfg != self.config:
            self.commit()
            self.header = header
            self.config = cfg
            self._close_segment()

    def append(
        self, now_ms, uptime_ms, counts, interval_ms, interval_counts, temp_c, flags, clock_valid, clock_offset_ms
    ):
        """Queue one record. Returns True when a commit is due (batch full or old)."""
        if self.count and (clock_valid != self.batch_clock_valid or clock_offset_ms != self.batch_clock_offset):
            self.commit()
        if self.count == 0:
            self.batch_clock_valid = clock_valid
            self.batch_clock_offset = clock_offset_ms if clock_valid else 0
            self.batch_base_uptime = uptime_ms - interval_ms
            self.batch_base_counts = counts - interval_counts
            self.batch_started_ms = now_ms
        e = self.entries
        if self.count >= self.batch_records:
            # The batch could not be committed (flash full): fold this sample into the last record
            # so counts and time still add up (see the flash-full policy above).
            i = 4 * (self.count - 1)
            e[i] += interval_ms
            e[i + 1] += interval_counts
            e[i + 2] = record.encode_temp(temp_c)
            e[i + 3] |= flags | record.F_DATA_DROPPED | record.F_STORAGE_LOW
            self.dropped += 1
            return True
        i = 4 * self.count
        e[i] = interval_ms
        e[i + 1] = interval_counts
        e[i + 2] = record.encode_temp(temp_c)
        e[i + 3] = flags | (record.F_STORAGE_LOW if self.low or self.full else 0)
        self.count += 1
        return self.count >= self.batch_records

    def commit_due(self, now_ms):
        return self.count and (self.count >= self.batch_records or now_ms - self.batch_started_ms >= COMMIT_AGE_MS)

    def commit(self):
        """Write the batch in RAM with one write + flush. Returns the number of records committed."""
        n = self.count
        if not n or self.header is None:
            return 0
        self.update_space()
        if self.full:
            return 0
        try:
            return self._write_batch(n)
        except OSError:
            # The secure element did not compute the MAC (boards/atecc.py raises OSError): the
            # batch stays in RAM and is retried at the next commit, like a failed flash write.
            self.write_errors += 1
            return 0

    def _encode(self, n, interval_s):
        """The batch in RAM (n records) as one chunk in self.buf, chained to the last: (size, mac)."""
        return record.encode_batch(
            self.buf,
            self.next_seq,
            self.boot,
            interval_s,
            self.batch_clock_valid,
            self.batch_clock_offset,
            self.batch_base_uptime,
            self.batch_base_counts,
            self.entries,
            n,
            self.key,
            self.chain,
        )

    def _write_batch(self, n):
        header = self.header
        if header is None:
            return 0
        size, mac = self._encode(n, header[0])
        # Roll over before the segment would spill a few bytes into one more flash block. littlefs
        # keeps up to 4 bytes of skip-list pointers per block (ctz(i) + 1 words): leave room.
        limit = self.segment_blocks * (self.block_size - 8)
        if self.file is None or self.file_size + size > limit:
            if not self._open_segment():
                return 0
            size, mac = self._encode(n, header[0])  # again: the new header took the buffer and moved the chain on
        f = self.file
        if f is None:
            return 0
        try:
            f.write(memoryview(self.buf)[:size])
            f.flush()
        except OSError:
            # The batch stays in RAM and is retried at the next commit.
            self.write_errors += 1
            self._close_segment()
            self.full = True
            return 0
        self.file_size += size
        self.chain = mac
        self.next_seq += n
        self.count = 0
        self.dropped = 0
        self._save_hwm()
        return n

    def _open_segment(self):
        self._close_segment()
        if self.header is None:
            return False
        first = self.next_seq
        interval_s, cal, dead, bg = self.header
        size, mac = record.encode_header(
            self.buf, self.boot, first, self.device_id, interval_s, cal, dead, bg, self.key, self.chain
        )
        if self.config is not None:  # in the same write: the header and what it was made under
            size, mac = self._config_chunk(size, mac)
        try:
            # Append, never truncate: a segment that a power cut left with only its header gets
            # this boot's header after it (same first sequence number). A host that already read
            # the first header reads on from there; files only ever grow, or go when reclaimed.
            f = open(self._path(first), "ab")
            f.write(memoryview(self.buf)[:size])
            f.flush()
        except OSError:
            self.write_errors += 1
            self.full = True
            return False
        self.file = f
        self.segment_first = first
        try:
            self.file_size = os.stat(self._path(first))[6]
        except OSError:
            self.file_size = size
        self.chain = mac
        if not self.segments or self.segments[-1] != first:
            self.segments.append(first)
        return True

    def _config_chunk(self, at, chain):
        """The configuration file, read straight into the buffer after the header (no heap: a
        segment opens while logging), sealed as a "C" chunk. Returns (end of it, its mac)."""
        mv = memoryview(self.buf)
        n = 0
        try:
            with open(self.config_path, "rb") as f:
                n = f.readinto(mv[at + 4 : at + 4 + record.MAX_PAYLOAD - record.MAC_LEN]) or 0
        except OSError:
            pass
        if not n:
            return at, chain
        more, mac = record.seal_chunk(mv[at:], record.KIND_CONFIG, n, self.key, chain)
        return at + more, mac

    def _close_segment(self):
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None
            self.segment_first = None

    def close(self):
        self.commit()
        self._close_segment()

    # --- space ---------------------------------------------------------------------------------

    def update_space(self):
        """Refresh the free-space state, reclaiming fully synced segments when space runs short.

        littlefs's free-block count (os.statvfs, lfs_fs_size) is "best effort": it counts the
        blocks of a file opened for appending twice until the file is written to (a segment
        reopened after a wake from deep sleep: up to a whole segment), and near full it can count
        more blocks than the flash has. So the open segment is closed while the blocks are
        counted and opened again after, and a count past the flash's size reads as full."""
        reopen = self.segment_first if self.file is not None else None
        self._close_segment()
        total, free = self._space()
        need = _RESERVE_BLOCKS * self.block_size + 2 * record.MAX_CHUNK
        while free < need and (self._reclaim_one() or self._roll_acknowledged()):
            total, free = self._space()
        if reopen is not None and self.file is None and reopen in self.segments:
            try:
                self.file = open(self._path(reopen), "ab")
                self.segment_first = reopen
            except OSError:
                pass  # the next commit opens a new segment
        self.full = free < need
        self.low = free < total * STORAGE_LOW_FRACTION
        return free

    def used_percent(self):
        """The share of the filesystem's blocks in use, whole percent (STATUS: storage_used_percent).
        Counted in blocks, so no product exceeds a small int on a 32-bit port."""
        st = os.statvfs(self.data_dir)
        free = st[3] if st[3] <= st[2] else 0  # a count past the flash's size: see update_space
        return (st[2] - free) * 100 // st[2] if st[2] else 0

    def _space(self):
        st = os.statvfs(self.data_dir)
        self.block_size = st[0]
        free = st[3] if st[3] <= st[2] else 0  # see update_space
        return st[0] * st[2], st[0] * free

    def _roll_acknowledged(self):
        """Short of space with one segment, the one being written, and every record in it
        acknowledged by a host: start the next segment (its header fits in the reserve) so that
        _reclaim_one can delete this one. Without it, a flash that one segment filled stayed full
        after a complete sync."""
        segs = self.segments
        if len(segs) != 1 or segs[0] >= self.next_seq or self.synced < self.next_seq:
            return False
        return self._open_segment()

    def _reclaim_one(self):
        """Delete the oldest segment if every record in it was acknowledged by a host."""
        if len(self.segments) < 2:
            return False
        first, nxt = self.segments[0], self.segments[1]
        if nxt > self.synced:  # its last record (nxt - 1) is not yet acknowledged
            return False
        try:
            os.remove(self._path(first))
        except OSError:
            return False
        self.segments.pop(0)
        return True

    def acknowledge(self, upto_seq):
        """A host stored every record before upto_seq durably: their segments may be reclaimed."""
        upto = min(upto_seq, self.next_seq)
        if upto > self.synced:
            self.synced = upto
            config.atomic_write(self.data_dir + "/synced", str(upto))
        return self.synced

    def bounds(self):
        """(first sequence number on flash, next sequence number, first unsynced)."""
        return (self.segments[0] if self.segments else self.next_seq), self.next_seq, self.synced
