# Everything runs from a project-local virtualenv so a fresh machine needs nothing but python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-slow lint bench demo docker k8s-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(STAMP)
	$(BIN)/ruff check gcs_model_sync tests bench scripts
	$(BIN)/ruff format --check gcs_model_sync tests bench scripts
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	bash bench/setup.sh
	$(BIN)/python bench/run.py $(BENCH_ARGS)

docker:
	docker build -t gcs-model-sync:$$($(BIN)/python -c 'import gcs_model_sync as m; print(m.__version__)') .

k8s-check: $(STAMP)
	$(BIN)/kubernetes-validate --strict deploy/k8s/*.yaml

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
