# Everything runs from a project-local virtualenv so a fresh machine needs nothing but python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-slow lint bench demo emulator docker k8s-check clean

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

# A GCS emulator holding the demo bucket, in the foreground until Ctrl-C; it prints the
# environment and the commands to try in another shell. EMULATOR_PORT=0 picks a free port.
emulator: $(STAMP)
	$(BIN)/python scripts/emulator.py

bench: $(STAMP)
	bash bench/setup.sh
	$(BIN)/python bench/run.py $(BENCH_ARGS)

docker:
	docker build -t gcs-model-sync:$$($(BIN)/python -c 'import gcs_model_sync as m; print(m.__version__)') .

# The Kubernetes versions the examples are validated against: the oldest we claim, and a
# recent one. deploy/k8s/README.md names them, and tests/test_deploy.py checks both.
K8S_VERSIONS := 1.30.0 1.34.0

k8s-check: $(STAMP)
	@for v in $(K8S_VERSIONS); do \
	  $(BIN)/kubernetes-validate --strict --quiet -k $$v deploy/k8s/*.yaml || exit 1; \
	  echo "deploy/k8s/*.yaml: valid for Kubernetes $$v (strict)"; \
	done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
