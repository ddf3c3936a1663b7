# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   create .venv, install, run the 4x4 J1-J2 ground state by VMC and DMRG, print the table
#   make test   create .venv if needed, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-slow bench clean

# `make demo` needs only the core install; `make test` adds the test tools and the optional
# engines whose tests must run in CI (block2).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/nqs run configs/demo_vmc.toml --overwrite
	$(BIN)/nqs run configs/demo_dmrg.toml --overwrite
	$(BIN)/nqs compare runs/demo_vmc.h5 runs/demo_dmrg.h5
	$(BIN)/nqs plot runs/demo_vmc.h5 runs/demo_dmrg.h5 -o runs/demo.png

# Two workers, one test file each (module-level fixtures are built once per file): the suite
# is mostly single-threaded tracing and compilation, which one process cannot spread over the
# 2-core CI machine. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test-slow: $(TEST_STAMP)
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache
