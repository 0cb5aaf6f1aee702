# staticlambda.mk: build the functions of an AWS SAM template with staticlambda.
#
# In template.yaml, each function: Runtime: provided.al2023, Handler: module.function,
# CodeUri: its folder, and
#     Metadata:
#       BuildMethod: makefile
# In the Makefile in that folder (CodeUri), one rule per function, named build-<LogicalId>:
#
#     STATICLAMBDA ?= /path/to/staticlambda
#     include $(STATICLAMBDA)/staticlambda.mk
#
#     build-HelloFunction:
#     	$(call staticlambda,app.handler)
#
# `sam build` runs `make build-<LogicalId>` in a scratch copy of CodeUri, with ARTIFACTS_DIR
# set. The call builds module.function from that copy, with requirements.txt beside it
# when there is one, and puts the static bootstrap (only it) in ARTIFACTS_DIR. Options of
# `make build` go after the handler, as make arguments: $(call staticlambda,app.handler,
# EXCLUDE="tests" INIT_CHECK=0). The first build makes staticlambda's .venv (one at a
# time, so `sam build --parallel` is safe); each function builds in a folder of its own
# under $(STATICLAMBDA)/.cache/sam (build/sam.py).

ifndef STATICLAMBDA
$(error set STATICLAMBDA to your staticlambda checkout before including staticlambda.mk)
endif
STATICLAMBDA_CODE_URI := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))

# $(call staticlambda,module.function[,make options]): the whole recipe of build-<LogicalId>.
staticlambda = +@mkdir -p "$(STATICLAMBDA)/.cache" && \
  flock "$(STATICLAMBDA)/.cache/venv.lock" \
    $(MAKE) --no-print-directory -s -C "$(STATICLAMBDA)" venv && \
  $(MAKE) --no-print-directory -C "$(STATICLAMBDA)" sam-build \
    "HANDLER=$(strip $1)" "LOGICAL_ID=$(@:build-%=%)" "SRC=$(CURDIR)" \
    "CODE_URI=$(STATICLAMBDA_CODE_URI)" $2
