# vitfleet: `make setup` then `make demo`. Every target calls the `vitfleet` CLI. A bare `make` prints `make help`.
MAKEFILE := $(lastword $(MAKEFILE_LIST))
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VITFLEET := $(BIN)/vitfleet
APT_PACKAGES := mosquitto mosquitto-clients dataset-fashion-mnist openssh-server rsync openssl chromium chromium-driver python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
RUNS ?= runs
FLEET ?=
QUICK ?=

.PHONY: help setup system-packages test lint test-fast test-lab lab-packages lab-boards lab-check demo teacher decompose engines \
	check-jetson deploy certs bench bench-loadgen clean

help: ## list the targets (the default goal: a bare `make` runs nothing else)
	@echo "usage: make TARGET [VAR=value ...]   (start with: make setup, then make demo)"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[A-Za-z_-]+:[^#]*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE)

setup: system-packages $(BIN)/.installed ## create .venv with the train + board groups and the system packages

system-packages: ## check the apt packages; installs the missing ones as root, else prints the apt-get command
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system packages present:$(APT_PACKAGES)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "missing system packages:$$missing"; \
	  echo "run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; fi

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -e '.[train,board,dev]'
	$(BIN)/python -c "import torch, timm, torch_pruning, onnxruntime, paho.mqtt, cv2; print('vitfleet deps ok: torch', torch.__version__, 'timm', timm.__version__, 'onnxruntime', onnxruntime.__version__)"
	touch $@

test: lint ## the full suite (what CI runs): lint, then pytest
	$(BIN)/python -m pytest -q

lint: ## ruff (lint, import order, format) and the import-layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test-fast: ## the suite without the tests marked slow
	$(BIN)/python -m pytest -q -m "not slow"

LAB_APT_PACKAGES := qemu-user-static binfmt-support debootstrap systemd-container iproute2
lab-packages: ## the apt packages the arm64 lab needs (qemu-user, debootstrap, systemd-nspawn)
	@$(MAKE) --no-print-directory -f $(MAKEFILE) system-packages APT_PACKAGES="$(LAB_APT_PACKAGES)"

LAB_BOARDS ?= 2
lab-boards: lab-packages ## boot LAB_BOARDS=2 arm64 Debian boards under qemu (root fs built once, cached) + the demo bundle; then: make certs/deploy FLEET=docs/lab-fleet.yaml
	$(VITFLEET) lab boards --n $(LAB_BOARDS) --lab-dir $(RUNS)/lab
	$(BIN)/python -c "from pathlib import Path; from vitfleet.decompose.pipeline import demo_bundle; print('demo bundle:', demo_bundle(Path('$(RUNS)/demo')))"

lab-check: ## the deployed lab fleet: live accuracy vs offline, 0 lost, aarch64 vs x86 int8 numerics -> bench/results/lab-fleet.json
	$(VITFLEET) lab check --fleet docs/lab-fleet.yaml --out bench/results/lab-fleet.json
	$(VITFLEET) lab report --results bench/results/lab-fleet.json --doc docs/lab.md

test-lab: lab-packages ## the arm64 lab tests (boot, deploy, reboot, numerics): slow, run by CI after make test
	$(BIN)/python -m pytest -q -m lab --timeout=3000 tests/test_lab_boards.py

FRAMES ?=
DEMO_ARGS ?=
# `make engines` records the engines it built and checked (and their bundle) here; `make demo` then runs them.
LAST_ENGINES_FILE := $(RUNS)/engines/last.mk
-include $(LAST_ENGINES_FILE)
ENGINES ?= $(if $(wildcard $(LAST_ENGINES)/manifest.json),$(LAST_ENGINES))
DEMO_BUNDLE ?= $(if $(and $(ENGINES),$(filter $(LAST_ENGINES),$(ENGINES)),$(wildcard $(LAST_BUNDLE)/bundle.json)),$(LAST_BUNDLE))
demo: ## the whole fleet on this machine: the engines `make engines` built last (ENGINES=DIR: others; ENGINES= : none), else the demo's own bundle + engines (cached); mosquitto, K agents, aggregator, camera, live view
	$(VITFLEET) demo --work-dir $(RUNS)/demo $(if $(ENGINES),--engines $(ENGINES)) $(if $(DEMO_BUNDLE),--bundle $(DEMO_BUNDLE)) \
	  $(if $(FRAMES),--frames $(FRAMES)) $(DEMO_ARGS)

teacher: ## train the default Fashion-MNIST teacher (>= 90 % top-1 in < 45 min on 2 cores)
	$(VITFLEET) teacher --dataset fashion-mnist --preset fmnist --epochs 15 --out $(RUNS)/teacher

METHOD ?= devit
PARTS ?= 4
decompose: ## split $(RUNS)/teacher into PARTS=4 sub-ViTs with METHOD=devit|edvit into $(RUNS)/bundle-METHOD-PARTS
	$(VITFLEET) decompose --teacher $(RUNS)/teacher --method $(METHOD) --parts $(PARTS) --out $(RUNS)/bundle-$(METHOD)-$(PARTS)

deploy: ## ship FLEET=fleet.yaml to its boards over SSH and start it (BOARD="a b", DRY_RUN=1, SSH_KEY=~/.ssh/key)
	@test -n "$(FLEET)" || { echo "usage: make deploy FLEET=fleet.yaml [BOARD=name] [DRY_RUN=1] [SSH_KEY=path]"; exit 2; }
	$(VITFLEET) deploy apply --fleet $(FLEET) $(foreach b,$(BOARD),--board $(b)) $(if $(DRY_RUN),--dry-run) \
	  $(if $(SSH_KEY),--ssh-key $(SSH_KEY))

certs: ## CA, broker/board certificates and MQTT passwords for FLEET=fleet.yaml, in .certs/ (keeps what exists)
	@test -n "$(FLEET)" || { echo "usage: make certs FLEET=fleet.yaml"; exit 2; }
	$(VITFLEET) deploy certs --fleet $(FLEET) --certs-dir .certs

BUNDLE ?= $(RUNS)/bundle-$(METHOD)-$(PARTS)
TARGET ?= cpu
PRECISION ?= int8
ENGINES_DIR ?= $(RUNS)/engines/$(TARGET)
engines: ## compile BUNDLE (default: what `make decompose` writes for METHOD/PARTS) for TARGET=cpu|pi|jetson at PRECISION=fp32|fp16|int8 into ENGINES_DIR=$(RUNS)/engines/TARGET, check it vs PyTorch; `make demo` then runs it
	$(VITFLEET) engines build --bundle $(BUNDLE) --out $(ENGINES_DIR) --target $(TARGET) --precision $(PRECISION)
	$(VITFLEET) engines check $(ENGINES_DIR) --bundle $(BUNDLE)
	mkdir -p $(dir $(LAST_ENGINES_FILE)) && printf 'LAST_ENGINES := %s\nLAST_BUNDLE := %s\n' '$(ENGINES_DIR)' '$(BUNDLE)' > $(LAST_ENGINES_FILE)

check-jetson: ## ON A JETSON: build fp16 + int8 TensorRT plans and check them (the only real test of the TensorRT path)
	ENGINES_DIR=$(RUNS)/engines/jetson BUNDLE=$(BUNDLE) VITFLEET="$(if $(wildcard $(VITFLEET)),$(VITFLEET),vitfleet)" \
	  bash engines/check_jetson.sh

TEACHER ?= $(RUNS)/teacher
bench: ## the benchmark report (docs/benchmarks.md, bench/results/); QUICK=1: tiny setup in a few minutes; SCALE=seed: ViT-B/16 + DeiT-S/16 at 224², untrained (~40 min)
	$(if $(filter seed,$(SCALE)),nice -n 5 $(BIN)/python -m vitfleet.bench.seed_scale --runs $(RUNS)/seed,\
	$(if $(QUICK),nice -n 10 $(VITFLEET) bench --quick --runs $(RUNS)/bench-quick,\
	  $(VITFLEET) bench --teacher $(TEACHER) --runs $(RUNS)))

LOADGEN_ARGS ?=
bench-loadgen: ## MLPerf LoadGen through a local fleet's camera path: SingleStream, MultiStream, Offline and accuracy mode (demo bundle unless LOADGEN_ARGS="--engines DIR --bundle DIR") -> bench/results/loadgen-*.json
	$(VITFLEET) bench loadgen --scenario singlestream $(LOADGEN_ARGS)
	$(VITFLEET) bench loadgen --scenario multistream $(LOADGEN_ARGS)
	$(VITFLEET) bench loadgen --scenario offline $(LOADGEN_ARGS)
	$(VITFLEET) bench loadgen --scenario offline --mode accuracy $(LOADGEN_ARGS)

clean: ## remove build leftovers (build/, *.egg-info, .pytest_cache); runs/ is kept
	rm -rf build *.egg-info .pytest_cache
