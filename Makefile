# The two commands of the README: `make demo` (segment the shipped samples) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: demo test install install-test samples benchmark clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first (the CPU build), then the package with torch held at that version
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip freeze | grep -i '^torch==' > $(VENV)/constraints.txt
	PIP_CONSTRAINT=$(VENV)/constraints.txt $(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	PIP_CONSTRAINT=$(VENV)/constraints.txt $(BIN)/pip install -q -e '.[testing]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/nucleiseg segment sample_data/*.tif --out results --overlay
	$(BIN)/nucleiseg evaluate results sample_data/ground_truth

# as root on Debian/Ubuntu, the system packages the napari tests need are installed first when missing;
# elsewhere the napari tests are skipped with a line naming what is missing
test: install-test
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then scripts/install_system_packages.sh --if-missing; fi
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

samples: install
	$(BIN)/python sample_data/make_samples.py

benchmark: install
	$(BIN)/python benchmarks/benchmark.py

clean:
	rm -rf results build dist
