# The log store: batching, recovery, rotation and the flash-full policy, on littlefs (MicroPython)
# or a host folder (CPython).
import os

import fsdir
import logstore
import record

DEV = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def _store(d, boot=1, batch=4, blocks=1):
    s = logstore.LogStore(d, boot, DEV, batch_records=batch, segment_blocks=blocks)
    s.recover()
    s.set_header(60, 153.8, 190.0, 0.1)
    return s


def _log(s, n, t0=0):
    for i in range(n):
        up = (t0 + i + 1) * 60000
        if s.append(up, up, (t0 + i + 1) * 10, 60000, 10, 5.0, 0, True, 1795000000000):
            s.commit()


def _read_all(d):
    seqs = []
    names = sorted(os.listdir(d + "/log"))
    for name in names:
        with open(d + "/log/" + name, "rb") as f:
            reader = record.ChunkReader(f)
            while True:
                got = reader.next()
                if got is None:
                    break
                kind, start, length = got
                if kind == record.KIND_BATCH:
                    _, recs = record.decode_batch(reader.buf, start, length)
                    seqs += [r[0] for r in recs]
            assert not reader.damage, reader.damage
    return seqs


def test_batches_commit_when_full():
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 10)
    assert s.next_seq == 8 and s.count == 2  # two in RAM, not yet committed
    assert _read_all(d) == list(range(8))


def test_uncommitted_records_are_lost_at_power_cut_and_numbers_stay_contiguous():
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 10)
    s._close_segment()  # power cut: the batch in RAM is gone
    s2 = _store(d, boot=2)
    assert s2.next_seq == 8
    _log(s2, 4)
    assert _read_all(d) == list(range(12))
    assert len(os.listdir(d + "/log")) == 2  # every boot starts a segment


def test_recovery_continues_after_a_torn_tail():
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 8)
    s.close()
    name = d + "/log/" + sorted(os.listdir(d + "/log"))[-1]
    with open(name, "ab") as f:
        f.write(b"\xa5\x42\x30\x00garbage")  # a torn write after the last commit
    s2 = _store(d, boot=2)
    assert s2.next_seq == 8 and s2.recovered_damage == 1


def test_segments_roll_over_within_whole_blocks():
    d = fsdir.fresh(blocks=128)
    s = _store(d, batch=32, blocks=1)
    _log(s, 32 * 100)
    sizes = [os.stat(d + "/log/" + n)[6] for n in os.listdir(d + "/log")]
    assert len(sizes) > 3 and max(sizes) <= 4096 - 8
    assert _read_all(d) == list(range(32 * 100))


class _Space:
    """A log store whose flash has a given number of free bytes."""

    def __init__(self, store, free):
        self.free = free
        store._space = lambda: (1 << 20, self.free)


def test_flash_full_folds_samples_and_writes_them_when_space_returns():
    d = fsdir.fresh()
    s = _store(d)
    space = _Space(s, 1 << 20)
    _log(s, 8)
    space.free = 0  # full, and nothing acknowledged: nothing may be deleted
    _log(s, 20, t0=8)
    assert s.full and s.count == 4 and s.dropped == 16
    assert _read_all(d) == list(range(8))
    space.free = 1 << 20
    assert s.commit() == 4
    seqs = _read_all(d)
    assert seqs == list(range(12))


def test_full_flash_reclaims_only_acknowledged_segments():
    d = fsdir.fresh(blocks=128)
    s = _store(d, batch=32, blocks=1)
    _log(s, 32 * 100)
    segments = list(s.segments)
    assert len(segments) >= 4
    space = _Space(s, 0)
    s.update_space()
    assert s.segments == segments  # nothing acknowledged: nothing deleted
    s.acknowledge(segments[2])  # records before the third segment are stored on a host
    s.update_space()
    assert s.segments == segments[2:]
    assert s.full  # still full: the rest is not acknowledged
    space.free = 1 << 20
    assert logstore._read_int(d + "/synced", -1) == segments[2]


def test_one_segment_that_filled_the_flash_goes_once_a_host_has_it_all():
    # A flash filled by the segment being written (its size limit not reached): after a host
    # acknowledged every record, the next commit starts a new segment (a header, within the
    # reserve) and deletes the old one; before that, nothing is deleted or started.
    d = fsdir.fresh(blocks=64)
    s = _store(d, batch=4, blocks=1000)  # a segment never rolls over by size here
    _log(s, 40)
    assert len(s.segments) == 1 and s.next_seq == 40
    old = s._path(s.segments[0])
    s._space = lambda: (1 << 20, 0 if logstore._exists(old) else 1 << 20)  # full while it exists
    _log(s, 4, t0=40)
    assert s.full and s.count == 4 and len(s.segments) == 1  # nothing acknowledged: kept
    s.acknowledge(39)
    assert s.commit() == 0 and len(s.segments) == 1  # record 39 is not on a host yet
    s.acknowledge(40)
    assert s.commit() == 4
    assert not s.full and s.segments == [40] and not logstore._exists(old)
    assert _read_all(d) == [40, 41, 42, 43]


class _Os:
    """The os module with statvfs answering as littlefs can near full: more blocks in use than
    the flash has (f_bfree, unsigned on the boards, wraps)."""

    def __init__(self, real):
        self.real = real

    def statvfs(self, path):
        st = self.real.statvfs(path)
        return (st[0], st[1], st[2], st[2] + 7) + tuple(st[4:])

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_free_count_past_the_flash_size_reads_as_full():
    d = fsdir.fresh(blocks=64)
    s = _store(d)
    _log(s, 4)
    real = logstore.os
    logstore.os = _Os(real)
    try:
        s.update_space()
        assert s.full and s.used_percent() == 100
        _log(s, 4, t0=4)
        assert s.count == 4 and s.next_seq == 4  # not written: the store takes it as full
    finally:
        logstore.os = real
    s.update_space()
    assert not s.full and s.commit() == 4


def test_boot_counter():
    d = fsdir.fresh()
    assert logstore.bump_boot_counter(d) == 1
    assert logstore.bump_boot_counter(d) == 2


def test_a_header_only_segment_is_appended_to_not_rewritten():
    # A power cut after a boot wrote its segment header but before its first batch: the next boot
    # starts a segment with the same first sequence number. It must append (a host may have read
    # the first header already), and the MAC chain must run on through both headers.
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 4)
    s._close_segment()
    s2 = _store(d, boot=2)
    s2._open_segment()  # boot 2 wrote its header...
    s2._close_segment()  # ...and lost power
    name = d + "/log/%08x.seg" % 4
    size_before = os.stat(name)[6]
    s3 = _store(d, boot=3)
    _log(s3, 4)
    assert os.stat(name)[6] > size_before
    with open(name, "rb") as f:
        reader = record.ChunkReader(f)
        kinds = []
        chain = None
        while True:
            got = reader.next()
            if got is None:
                break
            kind, start, length = got
            if chain is None:
                chain = record.decode_header(reader.buf, start)["chain_in"]
            assert record.verify_chunk(b"", chain, reader.buf, start, length)
            chain = record.chunk_mac(reader.buf, start, length)
            kinds.append(kind)
    assert kinds == [record.KIND_HEADER, record.KIND_HEADER, record.KIND_BATCH]
    assert _read_all(d) == list(range(8))


def test_used_percent_counts_the_filesystems_blocks():
    # STATUS's storage_used_percent: whole percent of the data filesystem's blocks in use.
    import sys

    d = fsdir.fresh(blocks=64)
    s = _store(d, batch=32, blocks=1)
    before = s.used_percent()
    st = os.statvfs(d)
    assert 0 <= before <= 100 and st[2] > 0
    if sys.implementation.name == "micropython":  # littlefs of 64 blocks: the test owns every block
        _log(s, 32 * 8)  # 8 batches of 32 records, several 4 KiB blocks
        st = os.statvfs(d)
        used = 64 - st[3]
        assert s.used_percent() == used * 100 // 64
        assert s.used_percent() > before
