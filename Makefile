# The two commands of the README. Each creates (or refreshes) the virtual env first.
#   make test   - the test suite (CI runs exactly this through .ci/run)
#   make demo   - the whole chain on the synthetic default: ablation grids, latency, report (<= 20 min, 2 CPU cores; README)
#   make demo-sota - make demo plus the comparison table's and the transformer-era synthetic twins (synthetic_sota.yaml, synthetic_transformers.yaml)
#   make demo-all  - make demo-sota plus the optical-flow family's keyframe and flow-source grids (27 min more than make demo; README)
#   make gpu-check - CUDA tests + attention / latency / FPS-protocol / training-step measurements on one GPU (<= 8 min) ->
#                 gpu-check/report.md and report.json (a CPU smoke run at tiny sizes without CUDA)

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
BENCH := $(VENV)/bin/bench
STAMP := $(VENV)/.installed-stamp
DEMO_SPECS := ablations/synthetic_methods.yaml ablations/synthetic_memory_length.yaml ablations/synthetic_control.yaml ablations/synthetic_aggregation.yaml ablations/synthetic_encoding.yaml
SOTA_SPECS := $(DEMO_SPECS) ablations/synthetic_sota.yaml ablations/synthetic_transformers.yaml
ALL_SPECS := $(SOTA_SPECS) ablations/synthetic_keyframe.yaml ablations/synthetic_flow_source.yaml

.PHONY: setup oracle test test-fast demo demo-sota demo-all report gpu-check clean

# torch first (tools/install_torch.py: the CPU build on a machine without a GPU, and an installed torch is kept);
# the constraints file pins that torch so torchvision is chosen to match it rather than replacing it.
$(STAMP): pyproject.toml tools/install_torch.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) tools/install_torch.py $(VENV)/torch-constraint.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(VENV)/torch-constraint.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# the tests' oracles (pyproject extra "oracle": transformers, mmsegmentation 1.2.2, mmcv-lite, mmengine, torchmetrics;
# tests/test_oracle_*.py). mmcv-lite and mmengine declare the GUI build of OpenCV, whose cv2 needs libGL and replaces the
# headless cv2 the suite uses: the headless build (same version) is put back afterwards.
oracle: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(VENV)/torch-constraint.txt -e ".[dev,oracle]"
	$(PY) -m pip uninstall --quiet -y opencv-python
	$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
		"opencv-python-headless==$$($(PY) -c 'import importlib.metadata as m; print(m.version("opencv-python-headless"))')"

# one torch thread per test worker (the runs' default, threads: 1): workers never oversubscribe the cores
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n auto --dist loadfile

# everything but the real-SLURM integration test
test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n auto --dist loadfile -m "not slurm"

demo: $(STAMP)
	$(PY) -m bench.demo $(DEMO_SPECS)

# the runs make demo finished are reused; only the comparison table's new rows train
demo-sota: $(STAMP)
	$(PY) -m bench.demo $(SOTA_SPECS)

# every synthetic grid; runs the shorter targets made are reused
demo-all: $(STAMP)
	$(PY) -m bench.demo $(ALL_SPECS)

gpu-check: $(STAMP)
	$(PY) -m bench.perf.gpu_check --out gpu-check

report: $(STAMP)
	$(BENCH) report $(DEMO_SPECS) --out reports

clean:
	rm -rf results/runs results/sweeps results/slurm
