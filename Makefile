# Two entry points (see README): `make demo` and `make test`. Both build what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):/usr/sbin:/sbin:$(PATH)

.PHONY: demo test test-fast check lint typecheck imports install dev mosquitto bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

# Debian's broker and browser: the tests start their own instances (mosquitto on free ports,
# chromium headless for the console). Never `playwright install`: the system chromium is used.
# fonts-wqy-microhei lets the console's screenshot artefact show Chinese text;
# victoria-metrics is the InfluxDB-compatible server the time-series feed is tested against;
# mosquitto-clients (mosquitto_sub, the broker floor) and libmosquitto-dev (the compiled burst
# publisher, bench/burst_pub.c) are for the benchmarks and their smoke runs in the suite.
mosquitto:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || missing="$$missing mosquitto"; \
	command -v mosquitto_sub >/dev/null 2>&1 || missing="$$missing mosquitto-clients"; \
	test -e /usr/include/mosquitto.h || missing="$$missing libmosquitto-dev"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || missing="$$missing fonts-wqy-microhei"; \
	command -v victoria-metrics >/dev/null 2>&1 || missing="$$missing victoria-metrics"; \
	command -v socat >/dev/null 2>&1 || missing="$$missing socat"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

demo: install
	$(BIN)/safety-gateway demo

lint: dev
	$(BIN)/ruff check gateway drivers rules simulator tests bench
	$(BIN)/ruff format --check gateway drivers rules simulator tests bench

typecheck: dev
	$(BIN)/mypy

imports: dev
	$(BIN)/lint-imports

check: lint typecheck imports

test: dev mosquitto check
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Figures against floors measured in the same run (README, Performance). Takes about 10 min.
# For every change: everything that starts no server (markers in pyproject.toml, set by the
# fixtures in tests/conftest.py), lint and types first.
FAST := not (broker or tsdb or smtp or modbus or browser or process or slow)
test-fast: dev check
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "$(FAST)"

bench: dev mosquitto
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/modbus_poll.py

# Hostile input at volume (README, Performance, "Faults and hostile input"): 100,000 MQTT
# messages while real readings flow, then schemathesis against the API for longer than the
# suite's run. A few minutes.
fuzz: dev mosquitto
	$(BIN)/python bench/fuzz.py --messages 100000
	FAULTS_SCHEMATHESIS_EXAMPLES=300 $(BIN)/python -m pytest -q -p no:cacheprovider -s tests/faults/test_api_schema.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
