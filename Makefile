# Two entry points: `make demo` (install, then the whole workflow on the embedded demo, CPU)
# and `make test` (install, then the test suite). Both build .venv from scratch when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test install system-deps clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# torch first and alone: pip then takes the pinned wheel from local disk where one is kept.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo; cat results/papers/demo/threeplayer/method_comparison.md
	@echo; echo "Every table and figure: results/papers/demo/; the report: $(CURDIR)/results/report.html"

# Debian packages the tests drive (apt-get, as root): headless Chromium renders the report; slurm-wlm and
# munge make the single-node SLURM that the profile test submits to.
system-deps:
	@command -v chromium >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium slurm-wlm munge >/dev/null; }

test: install system-deps
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV)
