import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
for path in (os.path.join(_ROOT, "firmware"), _HERE):
    if path not in sys.path:
        sys.path.insert(0, path)
