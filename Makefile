# Two entry points: `make demo` (install, then the whole workflow on the embedded demo, CPU)
# and `make test` (install, then the test suite). Both build .venv from scratch when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test install install-test system-deps clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# torch first and alone: pip then takes the pinned wheel from local disk where one is kept. The demo needs the
# runtime alone; the test extras (pytest, moto's server, snakefmt: about 50 s of the install) come with `make test`.
$(VENV)/.installed: pyproject.toml envs/no-deps.txt | $(BIN)/activate
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps -r envs/no-deps.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo; cat results/papers/demo/threeplayer/method_comparison.md
	@echo; echo "Every table and figure: results/papers/demo/; the report: $(CURDIR)/results/report.html"

# Debian packages the tests drive: headless Chromium renders the report; slurm-wlm and munge make the
# single-node SLURM that the profile test submits to. Installed (apt-get, as root) only where asked:
# MRISR_SYSTEM_PACKAGES=1 (CI sets it); elsewhere, e.g. a lab's head node, those tests are skipped and say why.
system-deps:
	@command -v chromium >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null || \
	if [ "$${MRISR_SYSTEM_PACKAGES:-0}" = 1 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium slurm-wlm munge >/dev/null; \
	else echo "chromium, slurm-wlm or munge missing: the report and SLURM tests are skipped" \
		"(MRISR_SYSTEM_PACKAGES=1 make test installs them with apt-get, as root)"; fi

test: install-test system-deps
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV)
