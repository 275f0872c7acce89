# The two quick-start commands: `make run` and `make test`.
# Each creates or updates the virtual environment in .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test fuzz bench lint typecheck check graph screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Demo actors on the demo grid (config/grid/dadukou.yaml), one token each.
DEMO_ACTORS := MEMBER=p-bq-xh-1-member VILLAGE=p-bq-xh-leader TOWN=p-bq-leader \
	TOWN_OFFICE=p-bq-office OFFICE=p-ddk-office1 PLANNING=p-ddk-planning \
	AGRI=p-ddk-agri

# The main job: the service on the embedded default (SQLite in var/), the
# bundled workflows and the demo grid, console notifications, demo tokens.
run: $(STAMP)
	$(BIN)/gengbao validate workflows/*.yaml
	$(BIN)/gengbao grid load config/grid/dadukou.yaml
	@mkdir -p var && : > var/demo-tokens.env
	@$(BIN)/gengbao token revoke --name demo  # last run's demo tokens: no pile of live ones
	@for pair in $(DEMO_ACTORS); do \
	  name=$${pair%%=*}; actor=$${pair#*=}; \
	  token=$$($(BIN)/gengbao token create --actor $$actor --name demo 2>/dev/null) || exit 1; \
	  echo "export $$name=$$token  # $$actor" >> var/demo-tokens.env; \
	done
	@echo "Demo tokens, one per actor (also in var/demo-tokens.env):"
	@cat var/demo-tokens.env
	@echo "In another shell: source var/demo-tokens.env and follow the README's curl session."
	$(BIN)/gengbao serve

# Four pytest workers on two cores: most tests wait on subprocesses and
# servers, so four keep both cores busy (TEST_WORKERS=0 runs in one process).
TEST_WORKERS ?= 4

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The random search: property tests at random, ten times the examples, with
# failures kept in .hypothesis/ (make test is derandomized and keeps nothing).
fuzz: $(STAMP)
	GENGBAO_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:randomly \
	  tests/test_timers_model.py tests/test_cases_model.py tests/test_calendar.py \
	  tests/test_definitions_fuzz.py tests/test_api_schema.py $(PYTEST_ARGS)

# Every benchmark and one table of headline figures (PostgreSQL too when
# GENGBAO_TEST_POSTGRES_URL is set); BENCH_ARGS=--quick for a smoke run.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

# A PNG of each page for duty staff (sign-in, my tasks, the case page, …) under
# var/screenshots/, taken in Chromium at phone width; see the README.
screenshots: $(STAMP)
	$(BIN)/python -m tests.support.screenshots var/screenshots

lint: $(STAMP)
	$(BIN)/ruff check engine notifications tests bench
	$(BIN)/ruff format --check engine notifications tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

graph: $(STAMP)
	$(BIN)/gengbao graph workflows/farmland_violation.yaml --format mermaid

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
