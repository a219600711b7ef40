# Run by tools/ulp/build.py under the MicroPython unix port: micropython assemble_s3.py ULPDIR SOURCE
# Prints the binary (hex) on one line, then one line "symbol word-address" per global label.
import sys

sys.path.insert(0, sys.argv[1])  # .ulp (esp32_ulp) and tools/ulp (opcodes_s3) on the path
sys.path.insert(0, sys.argv[2])


class _NoBtree:  # esp32_ulp.definesdb imports btree (a defines database isolog does not use)
    def open(self, *a):
        raise OSError("no defines database")


sys.modules["btree"] = _NoBtree()

import opcodes_s3  # noqa: E402
from esp32_ulp.assemble import Assembler  # noqa: E402
from esp32_ulp.link import make_binary  # noqa: E402
from esp32_ulp.preprocess import preprocess  # noqa: E402

opcodes_s3.install()
with open(sys.argv[3]) as f:
    src = f.read()
asm = Assembler()
asm.assemble(preprocess(src), remove_comments=False)
text, data, bss_len = asm.fetch()
binary = make_binary(text, data, bss_len)
print("".join("%02x" % b for b in binary))
for name in ("count_lo", "count_hi", "seq", "led_left", "led_ptr", "led_table", "entry"):
    try:
        print(name, asm.symbols.resolve_absolute(name))
    except KeyError:
        pass
