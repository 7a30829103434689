# Titanic on SageMaker: one target per pipeline stage. `make` alone lists them.
# Data flows one way: config.env -> this file -> scripts/ and launcher/ -> AWS or the
# embedded stack. Recipes only call scripts, so `make -n all` prints the real plan.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

# ---- configuration -------------------------------------------------------------------
# config.env is the single source of settings. `include` alone would let the file beat the
# environment, so remember what the environment set, include, then put it back. Values from
# the command line (make VAR=x) win over both by make's own rules.
CONFIG ?= config.env
CONFIG_VARS := $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' $(CONFIG))
$(foreach v,$(CONFIG_VARS),$(if $(filter environment,$(origin $(v))),$(eval _env_$(v) := $(value $(v)))))
include $(CONFIG)
$(foreach v,$(CONFIG_VARS),$(if $(filter file,$(origin _env_$(v))),$(eval $(v) := $(_env_$(v)))))
export $(CONFIG_VARS)

PYTHON_HOST ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build
STAMPS := $(BUILD)/stamps
VARS := $(BUILD)/vars
IMAGE_NAME := $(ECR_REPOSITORY):local
# The container's package is importable on the client too: the launcher shares its metric
# definitions and verify loads the pickled model, which needs its feature code.
export PYTHONPATH := $(CURDIR)/container:$(CURDIR)
export IMAGE_NAME

# The split the data stage writes and the upload stage sends.
SPLIT_DIR := $(BUILD)/data
CONTAINER_SRC := $(shell find container -type f -not -path '*/__pycache__/*' -not -name '*.pyc' | sort)

# ---- help ----------------------------------------------------------------------------
.PHONY: help
help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: config
config: ## Print the effective settings (config.env, then environment, then make VAR=...)
	@$(foreach v,$(CONFIG_VARS),printf '%s=%s\n' '$(v)' '$($(v))';)

# ---- set-up --------------------------------------------------------------------------
.PHONY: setup
setup: $(VENV)/.installed ## Create .venv with the pinned client dependencies

$(VENV)/.installed: requirements.txt
	$(PYTHON_HOST) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

.PHONY: base-image
base-image: ## Build the offline Python base image from Debian packages (no pull needed)
	scripts/build-offline-base.sh "$(OFFLINE_BASE_IMAGE)"

# ---- setting stamps: a file per setting, rewritten only when its value changes --------
# A stage depends on the settings it uses (not on all of config.env), so changing a
# hyperparameter re-trains without rebuilding the image or re-uploading the data. They are
# written while make reads this file (not by a recipe), so `make -n` shows only real work;
# a stamp written during `make -n` is newer than its target, which still rebuilds later.
$(shell mkdir -p $(VARS))
define track_setting
$(if $(and $(wildcard $(VARS)/$(1)),$(filter x$($(1)),x$(file <$(VARS)/$(1)))),,$(file >$(VARS)/$(1),$($(1))))
endef
setting = $(VARS)/$(1)
$(foreach v,$(CONFIG_VARS),$(eval $(call track_setting,$(v))))

# ---- stage 1: data -------------------------------------------------------------------
.PHONY: data
data: $(SPLIT_DIR)/manifest.json ## Check the vendored Kaggle CSV and split it 80:20 (with a manifest)

$(SPLIT_DIR)/manifest.json: data/titanic/train.csv data/titanic/SHA256SUMS launcher/prepare_data.py $(call setting,VALIDATION_FRACTION) $(call setting,SPLIT_SEED) | $(VENV)/.installed
	$(PY) -m launcher.prepare_data --source data/titanic/train.csv --checksums data/titanic/SHA256SUMS \
		--out $(SPLIT_DIR) --validation-fraction $(VALIDATION_FRACTION) --seed $(SPLIT_SEED)

# ---- stage 3: build ------------------------------------------------------------------
.PHONY: build
build: $(STAMPS)/image ## docker build the training image for linux/amd64

$(STAMPS)/image: $(CONTAINER_SRC) $(call setting,BASE_IMAGE) $(call setting,ECR_REPOSITORY)
	scripts/build-image.sh
	@mkdir -p $(@D) && touch $@

# ---- quality -------------------------------------------------------------------------
SHELL_SCRIPTS := $(wildcard scripts/*.sh) .ci/run

.PHONY: lint
lint: $(VENV)/.installed ## ruff, shellcheck and hadolint over everything
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck -x $(SHELL_SCRIPTS)
	$(VENV)/bin/hadolint container/Dockerfile

.PHONY: test
test: lint ## Lint, then every test tier (the Docker tier included)
	$(PY) -m pytest

.PHONY: test-fast
test-fast: $(VENV)/.installed ## Only the tests that need no Docker engine
	$(PY) -m pytest -m "not docker"

.PHONY: benchmark
benchmark: $(VENV)/.installed $(SPLIT_DIR)/manifest.json ## Print model CV figures, image size and start-up times
	$(PY) benchmarks/model_cv.py --data data/titanic/train.csv --split-dir $(SPLIT_DIR)
	$(PY) benchmarks/image_startup.py --image $(IMAGE_NAME) --split-dir $(SPLIT_DIR)

.PHONY: clean
clean: ## Remove local build outputs (not .venv, not cloud resources)
	rm -rf $(BUILD)
