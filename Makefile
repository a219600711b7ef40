# The two commands a newcomer runs: `make demo` and `make test`. Both bootstrap .venv on first run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STUBS  := .stubs
# The ULP assembler (requirements/ulp.txt), taken from its PyPI sdist by tools/ulp/fetch.py.
ULP    := .ulp
# Test runs never read the user's home (MicroPython keeps history and a lib path there).
export HOME_FOR_TESTS := $(CURDIR)/.test-home

.PHONY: all demo test bench check clean distclean chromium

all: test

$(STAMP): pyproject.toml requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "isolog needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(STUBS)/.installed: requirements/stubs.txt $(STAMP)
	rm -rf $(STUBS)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target $(STUBS)/esp32 \
		$$(grep -E '^micropython-(esp32|stdlib)-stubs' requirements/stubs.txt)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target $(STUBS)/rp2 \
		$$(grep -E '^micropython-(rp2|stdlib)-stubs' requirements/stubs.txt)
	@touch $@

$(ULP)/.installed: requirements/ulp.txt tools/ulp/fetch.py $(STAMP)
	$(PY) tools/ulp/fetch.py $(ULP)

demo: $(STAMP)
	$(VENV)/bin/isolog demo

# The dashboard's browser test (tests/web/test_browser.py) drives Debian's Chromium through Playwright
# (Playwright's own browser download is never used). Installed here when missing: as root with apt-get,
# otherwise the command to run is printed and the test fails (it does not skip).
CHROMIUM ?= /usr/bin/chromium

chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (Debian package) for the dashboard's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "make: the browser test needs Chromium at $(CHROMIUM): run 'sudo apt-get install chromium'" \
		"(Debian/Ubuntu) or set CHROMIUM=/path/to/chromium" >&2; \
	fi

test: $(STAMP) $(STUBS)/.installed $(ULP)/.installed chromium
	mkdir -p $(HOME_FOR_TESTS)
	HOME=$(HOME_FOR_TESTS) MICROPYPATH= $(PY) -m pytest -q

# make bench: every bench; make bench BENCH=commands: only bench/commands.py (names of bench/ modules)
bench: $(STAMP)
	mkdir -p $(HOME_FOR_TESTS)
	HOME=$(HOME_FOR_TESTS) $(PY) -m bench $(BENCH)

clean:
	rm -rf .pytest_cache build *.egg-info host/*.egg-info $(HOME_FOR_TESTS) demo-out

distclean: clean
	rm -rf $(VENV) $(STUBS) $(ULP)
