"""A fresh, empty data folder for log-store tests under either interpreter: a littlefs
filesystem on a RAM block device under MicroPython (like a board), a temporary folder under
CPython."""

import sys

_count = [0]


class RAMBlockDev:
    def __init__(self, blocks, block_size=4096):
        self.block_size = block_size
        self.data = bytearray(b"\xff" * (blocks * block_size))
        self.blocks = blocks

    def readblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        buf[:] = self.data[start : start + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            self.ioctl(6, block)
            offset = 0
        start = block * self.block_size + offset
        self.data[start : start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            start = arg * self.block_size
            self.data[start : start + self.block_size] = b"\xff" * self.block_size
        return 0


def fresh(blocks=64):
    _count[0] += 1
    if sys.implementation.name == "micropython":
        import vfs

        dev = RAMBlockDev(blocks)
        vfs.VfsLfs2.mkfs(dev)
        mount = "/t%d" % _count[0]
        vfs.mount(vfs.VfsLfs2(dev), mount)
        return mount
    import tempfile

    return tempfile.mkdtemp(prefix="isolog-fw-")
