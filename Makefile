# staticlambda: build, zip, invoke, deploy and test a static Lambda bootstrap.
# `make` alone prints what each target does. The first run of any target makes
# the virtual environment it needs.
#
# Every variable a user sets (HANDLER, SRC, EVENT, FUNCTION, ...) reaches the
# commands as data: its raw text ($(value X), never expanded by make, so neither
# `$` nor `$(shell ...)` in it runs) is exported as SL_X, and recipes use
# "$$SL_X", one shell word, never pasted into the command's text. The
# variables themselves are not exported: make would expand them to do so.

HANDLER      ?= handlers.echo.handler
SRC          ?=
REQUIREMENTS ?=
EVENT        ?= {"text":"Hello"}
EVENT_FILE   ?=
FUNCTION     ?=
DIST         ?= dist
# Where `make build` (and so `make zip`) runs: docker (the toolchain image of docker/Dockerfile)
# or native (this machine's .venv). Empty: docker when a Docker engine answers, else native.
BUILDER      ?=
AMAZON_LINUX ?= 2023

USER_VARIABLES := HANDLER SRC REQUIREMENTS EVENT EVENT_FILE FUNCTION DIST ROLE RUNTIME ARCH \
  REGION MEMORY TIMEOUT CREATE_ROLE DRY_RUN BENCH_ARGS ONLY_BINARY EXCLUDE ADD_DATA INIT_CHECK \
  PASS_ENV INIT_TRACE AWS_CREDENTIALS PERMISSIONS_BOUNDARY CAPACITY_PROVIDER MAX_CONCURRENCY
USER_VARIABLES += PROVIDED_SDK
# sam-build (staticlambda.mk; ARTIFACTS_DIR is SAM's) and deploy PACKAGE=image.
USER_VARIABLES += LOGICAL_ID CODE_URI ARTIFACTS_DIR PACKAGE IMAGE_REPOSITORY IMAGE_TAG
# The function's environment (build/function_env.py), and deploy's FORCE=1.
USER_VARIABLES += ENV_FILE ENV FORCE
# compare (build/compare/).
USER_VARIABLES += EVENTS REPORT LOG_FORMAT
unexport $(USER_VARIABLES)
$(foreach v,$(USER_VARIABLES),$(eval export SL_$v = $$(value $v)))
# $(call given,VAR): non-empty when the user set VAR (command line or environment).
given = $(filter command environment,$(firstword $(origin $1)))
# $(call opt,VAR,--option): `"--option=$SL_VAR"` when VAR was given, else nothing.
opt = $(if $(call given,$1),"$2=$$SL_$1")
# $(call opt_as,VAR,--option,NAME): `"--option=$SL_NAME"` when VAR was given.
opt_as = $(if $(call given,$1),"$2=$$SL_$3")
# $(call flag,VAR,--option): `--option` when VAR was given and not empty or 0.
flag = $(if $(filter-out 0,$(value $1)),$2)

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONHASHSEED := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: all build zip image invoke deploy remote-invoke test check bench venv clean help
.PHONY: clean-cache compare

help:
	@echo 'make zip                 dist/function.zip of what was built; builds first when nothing'
	@echo '                         was, or an input given or its files changed (default: echo handler)'
	@echo 'make build [HANDLER=m.f SRC=dir REQUIREMENTS=file]   build dist/bootstrap, always'
	@echo '    ONLY_BINARY=1          install the requirements from wheels only'
	@echo '    EXCLUDE="pat ..."      SRC files not to bundle (all non-Python files are, by default)'
	@echo '    ADD_DATA="path[:dest] ..."   more files to bundle'
	@echo '    INIT_CHECK=0           do not start the binary once at build (init code needs network)'
	@echo '    PROVIDED_SDK=0         never add boto3 for code that imports it without requiring it'
	@echo '    ENV_FILE=path ENV="NAME=value ..."   the function'"'"'s environment (dotenv file, words;'
	@echo '                           ENV wins): for the init check, make invoke and make deploy'
	@echo '    BUILDER=docker|native [AMAZON_LINUX=2023|2017.03]   where to build (default: docker'
	@echo '                           if an engine answers)'
	@echo '    ARCH=x86_64|arm64      the architecture (default: uname -m); arm64 on x86_64'
	@echo '                           builds in a cached arm64 Debian root under qemu (as root)'
	@echo 'make image               dist/image.oci.tar: an OCI image of dist/bootstrap alone'
	@echo 'make sam-build           what staticlambda.mk runs for `sam build` (README: Deploy with SAM)'
	@echo 'make invoke [EVENT=json | EVENT_FILE=path]   run dist/bootstrap once under the official'
	@echo '                         emulator, as Lambda would; exits 1 when the function errored;'
	@echo '                         rebuilds first when make zip would (same variables)'
	@echo '    INIT_TRACE=1           print the init trace'
	@echo '    PASS_ENV="NAME ..."    pass these variables of yours to the function'
	@echo '    AWS_CREDENTIALS=1      pass your AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN (never printed)'
	@echo 'make deploy FUNCTION=name [ROLE=arn CREATE_ROLE=1 PERMISSIONS_BOUNDARY=arn REGION= MEMORY='
	@echo '                         TIMEOUT= ARCH= DRY_RUN=1 CAPACITY_PROVIDER=arn MAX_CONCURRENCY=N]'
	@echo '                         create or update the function on AWS, with the environment'
	@echo '                         the build was given (ENV_FILE/ENV: names printed, never values)'
	@echo '    FORCE=1                deploy the default echo handler over a function running another'
	@echo '    PACKAGE=image IMAGE_REPOSITORY=<account>.dkr.ecr.<region>.amazonaws.com/<name>'
	@echo '                         [IMAGE_TAG=]  push dist/image.oci.tar with skopeo, deploy it'
	@echo '                         as a container-image function (no IMAGE_REPOSITORY: the steps)'
	@echo 'make remote-invoke FUNCTION=name [EVENT=json REGION=]   invoke the deployed function'
	@echo 'make compare EVENTS=path [HANDLER= SRC= REQUIREMENTS= ...]   each event (a file, or a'
	@echo '                         folder'"'"'s *.json) on the static bootstrap and on awslambdaric'
	@echo '                         4.2.2: same, or what differs; exits 1 when one differs;'
	@echo '                         rebuilds first when make zip would (same variables); both get'
	@echo '                         the environment the build was given (ENV_FILE/ENV), as invoke'
	@echo '    LOG_FORMAT=JSON        Lambda'"'"'s JSON log format for both (default Text; an'
	@echo '                           AWS_LAMBDA_ name, which ENV refuses)'
	@echo '    REPORT=file            also write the comparison as JSON'
	@echo 'make test                the test suite'
	@echo 'make check               ruff, ruff format --check, mypy'
	@echo 'make wheel [DIST=dist]   the runtime library as a wheel (hatchling), in DIST'
	@echo 'make bench [BENCH_ARGS="--cold 5"]   cold start, latency, memory beside awslambdaric,'
	@echo '                         for echo and a real function'
	@echo 'make clean [DIST=dist]   remove what a build wrote in DIST (only that) and .cache/build'
	@echo 'make clean-cache         empty .cache/build and .cache/envs (builds keep the last few)'
	@echo 'make help                this'

all: help

# The environment is made from an interpreter staticx accepts (build/interpreter.py
# says which and why), with every package pinned by hash.
$(STAMP): requirements/dev.txt pyproject.toml build/interpreter.py
	@base=$$(python3 build/interpreter.py) && echo "venv: $(VENV) from $$base" && \
	  $$base -m venv --clear $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/dev.txt
	@touch $@

venv: $(STAMP)

# What `make build` and `make zip` pass to the pipeline: for build every input (its
# defaults are the pipeline's), for zip only those given (the rest are the last build's).
INPUT_OPTS = $(call opt,ONLY_BINARY,--only-binary) $(call opt,EXCLUDE,--exclude) \
  $(call opt,ADD_DATA,--add-data) $(call opt,INIT_CHECK,--init-check) $(call opt,ARCH,--arch) \
  $(call opt,PROVIDED_SDK,--provided-sdk) $(ENV_FILE_OPT) $(call opt,ENV,--env)
ENV_FILE_OPT = $(call opt,ENV_FILE,--env-file)
ZIP_OPTS = $(call opt,HANDLER,--handler) $(call opt,SRC,--src) \
  $(call opt,REQUIREMENTS,--requirements) $(INPUT_OPTS)

# `make compare` without EVENTS: said before anything is chosen or built.
ifneq ($(filter compare,$(MAKECMDGOALS)),)
ifeq ($(strip $(value EVENTS)),)
$(error compare: give EVENTS=path: an event file, or a folder of .json files (one event each))
endif
endif

# The builder is chosen only when a goal may build (`make invoke` and `make compare`
# rebuild when `make zip` would): `docker info` must answer within 5 s.
BUILD_GOALS := $(filter build zip bootstrap invoke compare,$(MAKECMDGOALS))
ifneq ($(BUILD_GOALS),)
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
ifneq ($(BUILD_GOALS),)
$(info build: builder $(builder), $(builder_why)$(if $(filter docker,$(builder)),; image staticlambda-builder:al$(AMAZON_LINUX)))
endif

ifeq ($(builder),docker)
# The container runs the same `python -m build.pipeline` as the native build, as the
# calling user, on the repository mounted at /src. A SRC, REQUIREMENTS or DIST outside the
# repository is mounted at its own path (read-only but for DIST); one inside it is passed
# relative to /src. The container's .cache is its own folder per base image, so its
# PyInstaller and pip work never mixes with the native build's. Paths reach docker as
# data (SL_C_* below); docker's own -v syntax forbids a `:` in them.
BASE_IMAGE_2023    := amazonlinux:2023
BASE_IMAGE_2017.03 := amazonlinux:2017.03.1.20170812
BASE_IMAGE ?= $(BASE_IMAGE_$(AMAZON_LINUX))
# ARCH=arm64 builds in an arm64 container (buildx and qemu, or an arm64 engine); otherwise
# Lambda's default architecture, which an engine on an arm64 laptop emulates.
PLATFORM   ?= $(if $(filter arm64 aarch64,$(value ARCH)),linux/arm64,linux/amd64)
IMAGE      := staticlambda-builder:al$(AMAZON_LINUX)
DOCKER_CACHE := .cache/docker-al$(AMAZON_LINUX)
in_repo   = $(filter $(CURDIR) $(CURDIR)/%,$(abspath $1))
# $(call container_path,PATH): PATH as the container sees it.
container_path = $(if $(strip $1),$(if $(call in_repo,$1),$(or $(patsubst $(CURDIR)/%,%,$(filter $(CURDIR)/%,$(abspath $1))),.),$(abspath $1)))
# $(call outside,PATH): PATH's absolute form when it lies outside the repository.
outside = $(if $(strip $1),$(if $(call in_repo,$1),,$(abspath $1)))
export SL_C_SRC := $(call container_path,$(value SRC))
export SL_C_REQUIREMENTS := $(call container_path,$(value REQUIREMENTS))
export SL_C_DIST := $(call container_path,$(value DIST))
export SL_M_SRC := $(call outside,$(value SRC))
export SL_M_REQ := $(call outside,$(if $(strip $(value REQUIREMENTS)),$(dir $(abspath $(value REQUIREMENTS)))))
export SL_M_DIST := $(call outside,$(value DIST))
export SL_C_ENV_FILE := $(call container_path,$(value ENV_FILE))
export SL_M_ENV := $(call outside,$(if $(strip $(value ENV_FILE)),$(dir $(abspath $(value ENV_FILE)))))
ENV_FILE_OPT = $(call opt_as,ENV_FILE,--env-file,C_ENV_FILE)
export SL_IMAGE := $(IMAGE)
export SL_BASE_IMAGE := $(BASE_IMAGE)
export SL_CACHE_MOUNT := $(CURDIR)/$(DOCKER_CACHE):/src/.cache
DOCKER_RUN = docker run --rm --platform $(PLATFORM) --user "$$(id -u):$$(id -g)" -e HOME=/tmp \
	  -v "$$PWD":/src -v "$$SL_CACHE_MOUNT" \
	  $${SL_M_SRC:+-v "$$SL_M_SRC:$$SL_M_SRC:ro"} \
	  $${SL_M_REQ:+-v "$$SL_M_REQ:$$SL_M_REQ:ro"} \
	  $${SL_M_ENV:+-v "$$SL_M_ENV:$$SL_M_ENV:ro"} \
	  $${SL_M_DIST:+-v "$$SL_M_DIST:$$SL_M_DIST"} \
	  -w /src "$$SL_IMAGE"
# A missing path must not reach `docker run -v`: the engine would make it, as root.
DOCKER_PREPARE = \
	@if [ -n "$$SL_M_SRC" ] && [ ! -d "$$SL_M_SRC" ]; then \
	  echo "build: SRC=$$SL_SRC is not a directory" >&2; exit 1; fi; \
	if [ -n "$$SL_M_REQ" ] && [ ! -f "$$SL_REQUIREMENTS" ]; then \
	  echo "build: REQUIREMENTS=$$SL_REQUIREMENTS does not exist" >&2; exit 1; fi; \
	if [ -n "$$SL_M_ENV" ] && [ ! -f "$$SL_ENV_FILE" ]; then \
	  echo "build: ENV_FILE=$$SL_ENV_FILE does not exist" >&2; exit 1; fi
$(if $(BASE_IMAGE),,$(if $(BUILD_GOALS),$(error AMAZON_LINUX=$(AMAZON_LINUX) is neither 2023 nor 2017.03: set BASE_IMAGE)))

C_PATH_OPTS = $(call opt_as,SRC,--src,C_SRC) $(call opt_as,REQUIREMENTS,--requirements,C_REQUIREMENTS)

build zip bootstrap:
	$(DOCKER_PREPARE)
	mkdir -p -- "$$SL_DIST" '$(DOCKER_CACHE)'
	docker build --platform $(PLATFORM) -f docker/Dockerfile \
	  --build-arg "BASE_IMAGE=$$SL_BASE_IMAGE" -t "$$SL_IMAGE" requirements
	$(DOCKER_RUN) python -m build.pipeline $@ \
	  $(if $(filter build,$@),"--handler=$$SL_HANDLER" "--src=$$SL_C_SRC" \
	  "--requirements=$$SL_C_REQUIREMENTS",$(call opt,HANDLER,--handler) $(C_PATH_OPTS)) \
	  $(INPUT_OPTS) "--dist=$$SL_C_DIST"
else
build: $(STAMP)
	$(PY) -m build.pipeline build "--handler=$$SL_HANDLER" "--src=$$SL_SRC" \
	  "--requirements=$$SL_REQUIREMENTS" $(INPUT_OPTS) "--dist=$$SL_DIST"

zip bootstrap: $(STAMP)
	$(PY) -m build.pipeline $@ $(ZIP_OPTS) "--dist=$$SL_DIST"
endif

# The OCI archive of an image holding only $(DIST)/bootstrap (build/image.py).
image: $(STAMP)
	$(PY) -m build.image "--dist=$$SL_DIST"

# `bootstrap` (internal): dist/bootstrap as asked, rebuilt first only when `make zip` would.
.PHONY: bootstrap
invoke: $(STAMP) bootstrap
	$(PY) -m build.invoke "--bootstrap=$$SL_DIST/bootstrap" "--event=$$SL_EVENT" \
	  $(call opt,EVENT_FILE,--event-file) $(call opt,PASS_ENV,--pass-env) \
	  $(call flag,AWS_CREDENTIALS,--credentials) $(call flag,INIT_TRACE,--init-trace)

test: $(STAMP)
	$(PY) -m pytest

check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The runtime library (runtime/, handlers/) as a wheel, by the hatchling backend
# pyproject.toml declares. Not `python -m build`: run from the repo root, the
# pipeline's own build/ package shadows PyPA's `build` and that command fails.
.PHONY: wheel
wheel: $(STAMP)
	$(PY) -m pip wheel . --no-deps --wheel-dir "$$SL_DIST"

# Only what a build writes: DIST may be any folder, even one holding other files.
clean:
	cd -- "$$SL_DIST" 2>/dev/null && rm -f -- bootstrap bootstrap.handler bootstrap.inputs.json \
	  bootstrap.environment.json function.zip function.zip.sha256 \
	  bootstrap.cdx.json image.oci.tar image.oci.tar.sha256 || true
	rm -rf .cache/build .cache/arm64/build

# Build folders and environments of every builder (build/caches.py), but for those a
# running build holds. Standard library only: no venv is made for it.
clean-cache:
	@python3 -m build.caches clean

# AWS Lambda (build/deploy/, build/remote_invoke.py). Only the variables given are
# passed on, so the CLI's own defaults and its one-line errors (FUNCTION missing) apply.
DEPLOY_ARGS = $(call opt,FUNCTION,--function) $(call opt,ROLE,--role) \
  $(call opt,RUNTIME,--runtime) $(call opt,ARCH,--arch) $(call opt,REGION,--region) \
  $(call opt,MEMORY,--memory) $(call opt,TIMEOUT,--timeout) \
  $(call flag,CREATE_ROLE,--create-role) \
  $(call opt,PERMISSIONS_BOUNDARY,--permissions-boundary) $(call flag,DRY_RUN,--dry-run) \
  $(call opt,CAPACITY_PROVIDER,--capacity-provider) $(call opt,MAX_CONCURRENCY,--max-concurrency) \
  $(call opt,ENV_FILE,--env-file) $(call opt,ENV,--env) $(call flag,FORCE,--force)

deploy: $(STAMP)
	$(PY) -m $(DEPLOY_PACKAGE) $(strip $(DEPLOY_ARGS))

# PACKAGE=zip (the default): dist/function.zip. PACKAGE=image: dist/image.oci.tar, pushed
# to IMAGE_REPOSITORY with skopeo, deployed as a container-image function (one command,
# build/deploy/: --image and its options make it an image deploy, build/deploy/image_cli.py).
ifeq ($(filter-out zip,$(value PACKAGE)),)
DEPLOY_PACKAGE = build.deploy "--zip=$$SL_DIST/function.zip"
else ifeq ($(value PACKAGE),image)
DEPLOY_PACKAGE = build.deploy "--image=$$SL_DIST/image.oci.tar" \
  $(call opt,IMAGE_REPOSITORY,--repository) $(call opt,IMAGE_TAG,--tag)
else ifneq ($(filter deploy,$(MAKECMDGOALS)),)
$(error PACKAGE=$(value PACKAGE) is neither zip nor image)
endif

# One function of an AWS SAM template, as `sam build` asks for it (staticlambda.mk, build/sam.py).
.PHONY: sam-build
sam-build: $(STAMP)
	$(PY) -m build.sam "--logical-id=$$SL_LOGICAL_ID" "--handler=$$SL_HANDLER" "--src=$$SL_SRC" \
	  "--code-uri=$$SL_CODE_URI" "--artifacts-dir=$$SL_ARTIFACTS_DIR" \
	  $(call opt,ONLY_BINARY,--only-binary) $(call opt,EXCLUDE,--exclude) \
	  $(call opt,INIT_CHECK,--init-check)

# The static bootstrap beside AWS's Python runtime (awslambdaric 4.2.2) on the function's own
# events (build/compare/). `bootstrap` rebuilds first only when `make zip` would and takes
# ENV_FILE/ENV, whose environment compare reads from the build, as invoke does (a missing
# EVENTS is said before, at the top).
compare: $(STAMP) bootstrap
	$(PY) -m build.compare --up-to-date "--dist=$$SL_DIST" "--events=$$SL_EVENTS" \
	  $(call opt,LOG_FORMAT,--log-format) $(call opt,REPORT,--json)

remote-invoke: $(STAMP)
	$(PY) -m build.remote_invoke $(call opt,FUNCTION,--function) $(call opt,REGION,--region) \
	  "--event=$$SL_EVENT"

# A (this bootstrap) beside B (awslambdaric) under the official emulator: the echo
# handler, then the real function (handlers/api.py, built with its requirements);
# build/bench/ builds $(DIST)/bootstrap and its zip first, to time the build.
# BENCH_ARGS is split into words on purpose (no globbing: set -f), never evaluated.
bench: $(STAMP)
	set -f; $(PY) -m build.bench --build --real "--bootstrap=$$SL_DIST/bootstrap" \
	  $(call opt,ARCH,--arch) $$SL_BENCH_ARGS
