# staticlambda: build, zip, invoke, deploy and test a static Lambda bootstrap.
# The first run of any target makes the virtual environment it needs.

HANDLER      ?= handlers.echo.handler
SRC          ?=
REQUIREMENTS ?=
EVENT        ?= {"text":"Hello"}
FUNCTION     ?=
DIST         ?= dist

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONHASHSEED := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all build zip invoke deploy remote-invoke test check bench venv clean help

all: zip

help:
	@echo "make zip                 build $(DIST)/function.zip (default handler: $(HANDLER))"
	@echo "make build [HANDLER=m.f SRC=dir REQUIREMENTS=file]   build $(DIST)/bootstrap"
	@echo "make invoke [EVENT=json] run $(DIST)/bootstrap under the official emulator, once"
	@echo "make deploy FUNCTION=name [ROLE=arn ...]  create or update the function on AWS"
	@echo "make test | check | bench"

# The environment is made from an interpreter staticx accepts (build/interpreter.py
# says which and why), with every package pinned by hash.
$(STAMP): requirements/dev.txt pyproject.toml build/interpreter.py
	@base=$$(python3 build/interpreter.py) && echo "venv: $(VENV) from $$base" && \
	  $$base -m venv --clear $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/dev.txt
	@touch $@

venv: $(STAMP)

build: $(STAMP)
	$(PY) -m build.pipeline build --handler '$(HANDLER)' --src '$(SRC)' \
	  --requirements '$(REQUIREMENTS)' --dist '$(DIST)'

zip: build
	$(PY) -m build.pipeline zip --dist '$(DIST)'

invoke: $(STAMP)
	$(PY) -m build.invoke --bootstrap '$(DIST)/bootstrap' --event '$(EVENT)'

test: $(STAMP)
	$(PY) -m pytest

check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

clean:
	rm -rf $(DIST) .cache/build
