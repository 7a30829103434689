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
VENV ?= .venv
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

.PHONY: FORCE
FORCE:

# ---- stage 1: data -------------------------------------------------------------------
.PHONY: data
data: $(SPLIT_DIR)/manifest.json ## Check the vendored Kaggle CSV and split it 80:20 (with a manifest)

$(SPLIT_DIR)/manifest.json: data/titanic/train.csv data/titanic/SHA256SUMS launcher/prepare_data.py $(call setting,VALIDATION_FRACTION) $(call setting,SPLIT_SEED) | $(VENV)/.installed
	$(PY) -m launcher.prepare_data --source data/titanic/train.csv --checksums data/titanic/SHA256SUMS \
		--out $(SPLIT_DIR) --validation-fraction $(VALIDATION_FRACTION) --seed $(SPLIT_SEED)

# ---- where it runs: TARGET=local (embedded AWS) or TARGET=aws ------------------------
LOCAL_STATE_DIR := $(CURDIR)/.local
RUNS := runs
# What was uploaded and pushed is per target: switching TARGET redoes both.
DEPLOYED := $(BUILD)/$(TARGET)
IMAGE_RECORD := $(DEPLOYED)/image.json
SDK_CONFIG := $(CURDIR)/launcher/sagemaker-config.yaml
export SAGEMAKER_USER_CONFIG_OVERRIDE := $(SDK_CONFIG)
export SAGEMAKER_SUPPRESS_V2_WARNING := 1
export AWS_DEFAULT_REGION := $(AWS_REGION)
export LOCAL_STATE_DIR SPLIT_DIR IMAGE_RECORD
export MOTO_SERVER := $(abspath $(VENV))/bin/moto_server
# The scripts call the pinned awscli in .venv, not whatever `aws` is on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

ifeq ($(TARGET),local)
# Same scripts, same awscli and SDK calls: only the endpoint and registry differ.
LOCAL_ACCESS_KEY_ID ?= testing
LOCAL_SECRET_ACCESS_KEY ?= testing
export AWS_ENDPOINT_URL := https://127.0.0.1:$(LOCAL_MOTO_PORT)
export AWS_CA_BUNDLE := $(LOCAL_STATE_DIR)/tls/cert.pem
export AWS_ACCESS_KEY_ID := $(LOCAL_ACCESS_KEY_ID)
export AWS_SECRET_ACCESS_KEY := $(LOCAL_SECRET_ACCESS_KEY)
export ECR_REGISTRY_OVERRIDE := 127.0.0.1:$(LOCAL_REGISTRY_PORT)
export LOCAL_EMULATOR := moto
unexport AWS_PROFILE AWS_SESSION_TOKEN
# The stack id is rewritten only when the servers start afresh, and moto keeps nothing
# across a restart: upload and push depend on it, so they redo exactly then. While both
# pid files name live processes the stack is taken as up and nothing runs (make -n stays
# quiet); `make local-up` checks it for real.
STACK_PIDS := $(foreach f,moto registry,$(file <$(LOCAL_STATE_DIR)/$(f).pid))
STACK_ALIVE := $(and $(filter 2,$(words $(STACK_PIDS))),$(filter 2,$(words $(wildcard $(addprefix /proc/,$(STACK_PIDS))))))
AWS_READY := $(LOCAL_STATE_DIR)/stack-id
PREFLIGHT :=
$(AWS_READY): $(if $(STACK_ALIVE),,FORCE) | $(VENV)/.installed $(BUILD)/stamps/config
	scripts/local-stack.sh up
else
AWS_READY :=
# On AWS: credentials, region, Docker, role and bucket are checked before anything is
# spent, on every run (order-only, so a passing check rebuilds nothing).
PREFLIGHT := preflight
endif

.PHONY: preflight
preflight: | $(VENV)/.installed $(BUILD)/stamps/config ## TARGET=aws: check credentials, region, Docker, role and bucket
	$(PY) -m launcher.preflight

.PHONY: local-up
local-up: ## Start the embedded AWS (moto on 127.0.0.1) and registry, if not running
	scripts/local-stack.sh up

.PHONY: local-down
local-down: ## Stop exactly the embedded AWS and registry that local-up started
	scripts/local-stack.sh down
	rm -f $(DEPLOYED)/uploaded $(IMAGE_RECORD)

.PHONY: local-status
local-status: ## Say whether the embedded AWS and registry are up
	scripts/local-stack.sh status

# ---- stage 0: settings ----------------------------------------------------------------
.PHONY: validate
validate: $(BUILD)/stamps/config ## Check every setting in config.env (no AWS call)

$(BUILD)/stamps/config: $(addprefix $(VARS)/,$(CONFIG_VARS)) | $(VENV)/.installed
	$(PY) -m launcher.settings
	@mkdir -p $(@D) && touch $@

# ---- stage 2: upload -----------------------------------------------------------------
.PHONY: upload
upload: $(DEPLOYED)/uploaded ## Create the bucket if missing and aws s3 sync the split to it

# Settings are validated (order-only: a changed hyperparameter re-validates, not re-uploads).
$(DEPLOYED)/uploaded: $(SPLIT_DIR)/manifest.json $(AWS_READY) $(call setting,BUCKET) $(call setting,DATA_PREFIX) $(call setting,AWS_REGION) | $(BUILD)/stamps/config $(PREFLIGHT)
	scripts/upload-data.sh
	@mkdir -p $(@D) && touch $@

# ---- stage 3: build ------------------------------------------------------------------
.PHONY: build
build: $(STAMPS)/image ## docker build the training image for linux/amd64

$(STAMPS)/image: $(CONTAINER_SRC) $(call setting,BASE_IMAGE) $(call setting,ECR_REPOSITORY) | $(BUILD)/stamps/config
	scripts/build-image.sh
	@mkdir -p $(@D) && touch $@

# ---- stage 4: push -------------------------------------------------------------------
.PHONY: push
push: $(IMAGE_RECORD) ## Create the ECR repository if missing, log in, tag with the commit, push

$(IMAGE_RECORD): $(STAMPS)/image $(AWS_READY) $(call setting,ECR_REPOSITORY) $(call setting,AWS_REGION) | $(BUILD)/stamps/config $(PREFLIGHT)
	scripts/push-image.sh

# ---- stage 5: train (always a new job) -----------------------------------------------
.PHONY: train
train: $(DEPLOYED)/uploaded $(IMAGE_RECORD) | $(PREFLIGHT) ## Run a training job with Estimator.fit() and write a run record
	$(PY) -m launcher.train --image-record $(IMAGE_RECORD) --split-dir $(SPLIT_DIR) --runs-dir $(RUNS)

# ---- stage 6: verify -----------------------------------------------------------------
JOB ?=
VERIFY := $(PY) -m launcher.verify --runs-dir $(RUNS) --split-dir $(SPLIT_DIR)

.PHONY: verify
verify: | $(VENV)/.installed ## Download a job's model.tar.gz (JOB=name, default the latest), reload it, re-check its metrics
	$(VERIFY) --job "$(JOB)"

.PHONY: all
all: train ## The whole pipeline: data, upload, build, push, train, verify
	$(VERIFY)

# ---- evidence: instances, cost, reports ----------------------------------------------
REPORTS := reports
INSTANCE_MIN_MEMORY_GIB ?= 4

.PHONY: instance-report
instance-report: | $(VENV)/.installed $(BUILD)/stamps/config ## The cheapest instance type with quota, with prices and quotas (reports/)
	$(PY) -m launcher.instances --out $(REPORTS) --min-memory-gib $(INSTANCE_MIN_MEMORY_GIB)

.PHONY: cost
cost: | $(VENV)/.installed ## A table of seconds, price and cost over every run record
	$(PY) -m launcher.costs --runs-dir $(RUNS)

.PHONY: report
report: instance-report ## One Markdown report per run (JOB=name for one) with ROC and importance PNGs
	$(PY) -m launcher.report --runs-dir $(RUNS) --reports-dir $(REPORTS) --instance-report $(REPORTS)/instance-report.json --job "$(JOB)"

# ---- IAM ----------------------------------------------------------------------------
IAM_OUT := $(BUILD)/iam

.PHONY: iam-render
iam-render: | $(VENV)/.installed $(BUILD)/stamps/config ## Fill iam/ templates from config.env into build/iam/
	$(PY) -m launcher.iam render --out $(IAM_OUT)

.PHONY: iam-check
iam-check: | $(VENV)/.installed $(BUILD)/stamps/config ## Render, then lint the permission policies with parliament
	$(PY) -m launcher.iam check --out $(IAM_OUT)

.PHONY: iam
iam: iam-check $(AWS_READY) ## Create or update the execution role (admin rights); print its ARN and the principal policy
	$(PY) -m launcher.iam apply --out $(IAM_OUT)

# ---- clean-up ------------------------------------------------------------------------
CONFIRM ?= no
DELETE_BUCKET ?= no

.PHONY: clean-resources
clean-resources: $(AWS_READY) | $(BUILD)/stamps/config $(PREFLIGHT) ## List (or, with CONFIRM=yes, delete) the toolkit's cloud resources
	CONFIRM=$(CONFIRM) DELETE_BUCKET=$(DELETE_BUCKET) scripts/clean-resources.sh
	@[[ "$(CONFIRM)" != yes ]] || rm -f $(DEPLOYED)/uploaded $(IMAGE_RECORD)

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
	$(PY) -m pytest -m "not docker and not stack"

.PHONY: benchmark
benchmark: $(VENV)/.installed $(SPLIT_DIR)/manifest.json $(STAMPS)/image ## Print model CV figures, image size and start-up times
	$(PY) benchmarks/model_cv.py --data data/titanic/train.csv --split-dir $(SPLIT_DIR)
	$(PY) benchmarks/image_startup.py --image $(IMAGE_NAME) --split-dir $(SPLIT_DIR)

.PHONY: tune
tune: $(VENV)/.installed $(SPLIT_DIR)/manifest.json ## Random-search hyperparameters by CV on the train split only (slow)
	$(PY) benchmarks/tune_hyperparameters.py --train $(SPLIT_DIR)/train/train.csv

.PHONY: clean
clean: ## Remove local build outputs (not .venv, runs/, or cloud resources)
	rm -rf $(BUILD)
