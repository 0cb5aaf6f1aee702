# staticlambda: build, zip, invoke, deploy and test a static Lambda bootstrap.
# The first run of any target makes the virtual environment it needs.

HANDLER      ?= handlers.echo.handler
SRC          ?=
REQUIREMENTS ?=
EVENT        ?= {"text":"Hello"}
FUNCTION     ?=
DIST         ?= dist
# Where `make build` (and so `make zip`) runs: docker (the toolchain image of docker/Dockerfile)
# or native (this machine's .venv). Empty: docker when a Docker engine answers, else native.
BUILDER      ?=
AMAZON_LINUX ?= 2023

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
	@echo "make build BUILDER=docker|native [AMAZON_LINUX=2023|2017.03]   where to build (default: docker if an engine answers)"
	@echo "make remote-invoke FUNCTION=name [EVENT=json]   invoke the deployed function"
	@echo "make test | check | bench"

# The environment is made from an interpreter staticx accepts (build/interpreter.py
# says which and why), with every package pinned by hash.
$(STAMP): requirements/dev.txt pyproject.toml build/interpreter.py
	@base=$$(python3 build/interpreter.py) && echo "venv: $(VENV) from $$base" && \
	  $$base -m venv --clear $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/dev.txt
	@touch $@

venv: $(STAMP)

# The builder is chosen only when a goal builds: `docker info` must answer within 5 s.
ifneq ($(filter all build zip,$(or $(MAKECMDGOALS),all)),)
ifeq ($(strip $(BUILDER)),)
  docker_answer := $(shell \
    command -v docker >/dev/null 2>&1 || { echo 'no docker command on PATH'; exit 0; }; \
    t=; command -v timeout >/dev/null 2>&1 && t='timeout 5'; \
    out=$$($$t docker info --format '{{.ServerVersion}}' 2>&1); rc=$$?; \
    if [ $$rc = 0 ] && [ -n "$$out" ]; then echo "ok $$out"; \
    elif [ $$rc = 124 ]; then echo 'docker info did not answer within 5 s'; \
    else echo "$$out"; fi)
  ifeq ($(firstword $(docker_answer)),ok)
    builder     := docker
    builder_why := a Docker engine answers (server $(wordlist 2,99,$(docker_answer)))
  else
    builder     := native
    builder_why := no Docker engine: $(subst ',,$(strip $(docker_answer)))
  endif
else
  builder     := $(strip $(BUILDER))
  builder_why := BUILDER=$(builder) was given
  ifeq ($(filter docker native,$(builder)),)
    $(error BUILDER=$(builder) is neither docker nor native)
  endif
endif
endif

ifeq ($(builder),docker)
# The container runs the same `python -m build.pipeline build` as the native build, as the
# calling user, on the repository mounted at /src. A SRC, REQUIREMENTS or DIST outside the
# repository is mounted at its own path (read-only but for DIST); one inside it is passed
# relative to /src. The container's .cache is its own folder per base image, so its
# PyInstaller and pip work never mixes with the native build's. No spaces in these paths.
BASE_IMAGE_2023    := amazonlinux:2023
BASE_IMAGE_2017.03 := amazonlinux:2017.03.1.20170812
BASE_IMAGE ?= $(BASE_IMAGE_$(AMAZON_LINUX))
# Lambda's default architecture; on an arm64 laptop the engine emulates it.
PLATFORM   ?= linux/amd64
IMAGE      := staticlambda-builder:al$(AMAZON_LINUX)
DOCKER_CACHE := .cache/docker-al$(AMAZON_LINUX)
in_repo   = $(filter $(CURDIR) $(CURDIR)/%,$(abspath $1))
# $(call container_path,PATH): PATH as the container sees it.
container_path = $(if $(strip $1),$(if $(call in_repo,$1),$(or $(patsubst $(CURDIR)/%,%,$(filter $(CURDIR)/%,$(abspath $1))),.),$(abspath $1)))
# $(call outside_mount,DIR,:ro): the -v option for DIR when it lies outside the repository.
outside_mount = $(if $(strip $1),$(if $(call in_repo,$1),,-v '$(abspath $1)':'$(abspath $1)'$2))
DOCKER_RUN = $(strip docker run --rm --platform $(PLATFORM) --user $$(id -u):$$(id -g) -e HOME=/tmp \
	  -v '$(CURDIR)':/src -v '$(CURDIR)/$(DOCKER_CACHE)':/src/.cache \
	  $(call outside_mount,$(SRC),:ro) \
	  $(call outside_mount,$(if $(strip $(REQUIREMENTS)),$(dir $(abspath $(REQUIREMENTS)))),:ro) \
	  $(call outside_mount,$(DIST)) \
	  -w /src $(IMAGE))
# A missing path must not reach `docker run -v`: the engine would make it, as root.
outside_check = $(if $(strip $1),$(if $(call in_repo,$1),,@test -$2 '$(abspath $1)' || { echo 'build: $3=$1 $4' >&2; exit 1; }))

# `make zip` zips in the same container, so Docker is all a machine needs.
zip: PY = $(DOCKER_RUN) python
zip: override DIST := $(call container_path,$(DIST))

build:
	@echo 'build: builder docker, $(builder_why); image $(IMAGE) from $(BASE_IMAGE)'
	$(if $(BASE_IMAGE),,$(error AMAZON_LINUX=$(AMAZON_LINUX) is neither 2023 nor 2017.03: set BASE_IMAGE))
	$(call outside_check,$(SRC),d,SRC,is not a directory)
	$(call outside_check,$(REQUIREMENTS),f,REQUIREMENTS,does not exist)
	mkdir -p '$(DIST)' '$(DOCKER_CACHE)'
	docker build --platform $(PLATFORM) -f docker/Dockerfile \
	  --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) requirements
	$(DOCKER_RUN) \
	  python -m build.pipeline build --handler '$(HANDLER)' --src '$(call container_path,$(SRC))' \
	  --requirements '$(call container_path,$(REQUIREMENTS))' --dist '$(call container_path,$(DIST))'
else
build: $(STAMP)
	@echo 'build: builder $(builder), $(builder_why)'
	$(PY) -m build.pipeline build --handler '$(HANDLER)' --src '$(SRC)' \
	  --requirements '$(REQUIREMENTS)' --dist '$(DIST)'
endif

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

# AWS Lambda (build/deploy.py, build/remote_invoke.py). Only the variables given are
# passed on, so the CLI's own defaults and its one-line errors (FUNCTION missing) apply.
DEPLOY_ARGS = $(if $(FUNCTION),--function '$(FUNCTION)') $(if $(ROLE),--role '$(ROLE)') \
  $(if $(RUNTIME),--runtime '$(RUNTIME)') $(if $(ARCH),--arch '$(ARCH)') \
  $(if $(REGION),--region '$(REGION)') $(if $(MEMORY),--memory '$(MEMORY)') \
  $(if $(TIMEOUT),--timeout '$(TIMEOUT)') $(if $(CREATE_ROLE),--create-role) \
  $(if $(DRY_RUN),--dry-run) \
  $(if $(CAPACITY_PROVIDER),--capacity-provider '$(CAPACITY_PROVIDER)') \
  $(if $(MAX_CONCURRENCY),--max-concurrency '$(MAX_CONCURRENCY)')

deploy: $(STAMP)
	$(PY) -m build.deploy --zip '$(DIST)/function.zip' $(strip $(DEPLOY_ARGS))

remote-invoke: $(STAMP)
	$(PY) -m build.remote_invoke $(if $(FUNCTION),--function '$(FUNCTION)') \
	  $(if $(REGION),--region '$(REGION)') --event '$(EVENT)'

# A (this bootstrap) beside B (awslambdaric) under the official emulator, with the
# echo handler; bench.py builds $(DIST)/bootstrap and its zip first, to time the build.
bench: $(STAMP)
	$(PY) -m build.bench --build --bootstrap '$(DIST)/bootstrap' $(BENCH_ARGS)
