#!/usr/bin/env bash
# Makes `.whl`, what benchmarks/gpu.sh needs carried to the GPU machine (the device run's `carry`): wheels, for the
# machine image's Python 3.12, of what its image lacks, at this checkout's venv's versions.
# Usage, from the repository root after `make install`: bash benchmarks/gpu_carry.sh
set -euo pipefail
packages=(nibabel jsonschema jsonschema-specifications referencing rpds-py attrs importlib-resources)
pins=$(.venv/bin/python -c 'import sys; from importlib.metadata import version
print(" ".join(f"{p}=={version(p)}" for p in sys.argv[1:]))' "${packages[@]}")
rm -rf .whl
# shellcheck disable=SC2086
.venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d .whl $pins
du -sh .whl
