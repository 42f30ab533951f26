# Two commands for a new user: `make sim` (install, then the simulator demo) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install sim test redis bench clean

install: $(STAMP)

# torch is installed first and pinned exactly: the CPU wheel; an unpinned torch pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,remote]'
	touch $(STAMP)

# The lock tests talk to a real redis-server (Debian's package) on loopback.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

sim: install
	$(PY) cli.py run --sim $(ARGS)

test: install redis
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/sim_render.py
	$(PY) benchmarks/world_model.py --device cpu --quick
	$(PY) benchmarks/dream.py --device cpu --quick
	$(PY) benchmarks/agent.py --device cpu --quick
	$(PY) benchmarks/cycle.py

clean:
	rm -rf $(VENV) runs .pytest_cache
