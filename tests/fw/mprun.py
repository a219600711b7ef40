# Runs one firmware test module under MicroPython: every function named test_* is called.
# Prints "PASS name" or "FAIL name: error" per test and "SUMMARY passed failed" at the end.
import sys

name = sys.argv[1]
mod = __import__(name)
passed = 0
failed = 0
for attr in sorted(dir(mod)):
    if not attr.startswith("test_"):
        continue
    fn = getattr(mod, attr)
    try:
        fn()
        passed += 1
        print("PASS", attr)
    except Exception as exc:  # report every failure, keep going
        failed += 1
        print("FAIL", attr + ":", repr(exc))
        sys.print_exception(exc)
print("SUMMARY", passed, failed)
