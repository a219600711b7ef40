"""`make bench` (python -m bench from the repository root): every bench module's main() in turn,
the known ones first, then any other module in bench/ that has a main()."""

import importlib
import importlib.util
import pkgutil
from pathlib import Path

ORDER = ["firmware", "compliance", "commands", "sync"]


def modules() -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def main() -> None:
    import sys

    wanted = sys.argv[1:]  # `python -m bench commands sync`: only those (make bench BENCH="...")
    for name in modules():
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if callable(run):
            run()
            print(flush=True)


if __name__ == "__main__":
    main()
