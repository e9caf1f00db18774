# Development, test and demo entry points. The pack itself needs none of this:
# ComfyUI loads the folder as it is (see README, "Install").
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   := .host/comfyui

.PHONY: test env

test: env
	$(PY) -m pytest -q tests

env: $(VENV)/.installed $(HOST)/comfyui_version.py

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements.txt
	touch $@

$(HOST)/comfyui_version.py: devkit/install_host.py | $(VENV)/.installed
	$(PY) devkit/install_host.py $(HOST)
