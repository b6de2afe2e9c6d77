# One command each. Every target that runs code first makes sure .venv matches uv.lock.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: install run test faults lint fmt bench bench-scale clean

install: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	@$(BIN)/uv sync --frozen --quiet
	@touch $@

run: install
	$(BIN)/leadflow dev

# The browser tests drive Debian's chromium; installed here when missing (needs root and apt).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "warning: no $(CHROMIUM); the browser tests will fail (apt-get install chromium)"; fi

test: install $(CHROMIUM)
	$(BIN)/pytest -m "not faults" $(PYTEST_ARGS)

# Whole-pipeline fault scenarios (tests/faults): parts of `leadflow dev` killed under load;
# and (tests/kafka) the relay's recovery of a lost broker, on Tansu and on Apache Kafka.
# About 7 minutes, kept apart from `make test` so either runs alone; CI (.ci/run) runs both.
faults: install
	$(BIN)/pytest -m faults tests/faults tests/kafka $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

# Reads and a rescore at 10k, 100k and 1M seeded leads (about 20 minutes), a metrics rebuild of
# 1M archived events, a 1M-row CSV import, then the hour-long soak at 30 leads/s; not in CI.
# All always run; any missing a target fails it.
bench-scale: install
	$(BIN)/python -m bench.scale; scale=$$?; \
	$(BIN)/python -m bench.rebuild; rebuild=$$?; \
	$(BIN)/python -m bench.imports --rows 1000000; imports=$$?; \
	$(BIN)/python -m bench.soak; soak=$$?; \
	exit $$((scale || rebuild || imports || soak))

# Build and tool caches only: the stack's data (.leadflow: its database, sealing key and
# password) is kept; to start with no data, stop the stack and remove .leadflow yourself.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
