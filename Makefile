# dmrnet: one entry point for set-up, tests, the demo and the paper's experiments.
#
#   make demo                 digits set (ships with scikit-learn): pack, train, evaluate, export, plot
#   make test                 the test suite (creates .venv first)
#   make cifar10 GPUS=0,1     the paper's CIFAR-10 recipe (packs the data first if missing)
#   make imagenet GPUS=0-7 ILSVRC=/path/to/ILSVRC2012
#
# Overridable: GPUS (empty: CPU), DATA (packed data root), MODEL (preset or family), EPOCHS,
# RUNS (run folders root), ARGS (any further training flags).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

# BUILD: which MXNet the venv gets. auto (the default): the GPU build (mxnet-cu112 with NVIDIA's
# CUDA 11 runtime wheels, requirements-gpu.txt) where the machine has an NVIDIA driver, else the
# CPU build (requirements.txt). Switching rebuilds the venv's MXNet (the two cannot coexist).
BUILD  ?= auto
DRIVER := $(firstword $(wildcard /proc/driver/nvidia/version) \
            $(shell ldconfig -p 2>/dev/null | grep -o '/[^ ]*/libcuda\.so\.1$$' | head -n 1))
ifeq ($(BUILD),auto)
  override BUILD := $(if $(DRIVER),gpu,cpu)
  BUILD_WHY := $(if $(DRIVER),NVIDIA driver found ($(DRIVER)),no NVIDIA driver found); BUILD=cpu or BUILD=gpu chooses
else
  BUILD_WHY := BUILD=$(BUILD)
endif
ifeq ($(filter $(BUILD),cpu gpu),)
  $(error BUILD=$(BUILD): use BUILD=cpu, BUILD=gpu or BUILD=auto)
endif
REQUIREMENTS := $(if $(filter gpu,$(BUILD)),requirements-gpu.txt,requirements.txt)
OTHER_BUILD  := $(if $(filter gpu,$(BUILD)),cpu,gpu)
STAMP  := $(VENV)/.installed-$(BUILD)

GPUS   ?=
DATA   ?= data
RUNS   ?= runs
MODEL  ?=
EPOCHS ?=
ARGS   ?=
ILSVRC ?=
# Experiments: DATASET (comma-separated), SCALE (shrink epochs for a smoke run), SEEDS (runs per
# configuration), GPUS_PER_RUN (default: the authors' 32 images a device where GPUS allows),
# L (digits-compare and fashion-compare: L of the three networks, default 12).
DATASET ?=
SCALE  ?=
SEEDS  ?=
GPUS_PER_RUN ?=
L      ?=

# Flags only when given, so each script keeps its own recipe otherwise.
TRAIN_FLAGS = --gpus '$(GPUS)' $(if $(MODEL),--model $(MODEL)) $(if $(EPOCHS),--epochs $(EPOCHS)) $(ARGS)
# Before data is downloaded or packed for a GPU run: one line and exit 2 when GPUS cannot run.
GPU_CHECK = $(if $(GPUS),$(PY) -m dmrnet.utils.gpus --check '$(GPUS)')

.PHONY: venv test demo params clean-venv bench bench-step test-gpu-build gpu-check \
        data-digits data-cifar10 data-cifar100 data-svhn data-imagenet bench-data \
        cifar10 cifar100 svhn imagenet \
        table2 table3 table5 figure6 imagenet-compare digits-compare report paths flow \
        data-fashion fashion fashion-recipe fashion-compare fashion-keep fashion-publish

venv: $(STAMP)
	@echo "venv: $(VENV) has the $(BUILD) build of MXNet ($(BUILD_WHY))"

# Idempotent: the stamp is newer than every file that defines the environment.
$(STAMP): setup.py requirements.txt requirements-gpu.txt requirements-common.txt \
          requirements-test.txt $(wildcard */__init__.py */*/__init__.py)
	@echo "make venv: installing the $(BUILD) build of MXNet into $(VENV) ($(BUILD_WHY))"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if [ -e $(VENV)/.installed-$(OTHER_BUILD) ]; then \
	  $(PIP) uninstall -q -y mxnet mxnet-cu112 && rm -f $(VENV)/.installed-$(OTHER_BUILD); fi
	$(PIP) install -q -r $(REQUIREMENTS) -r requirements-test.txt
	$(PIP) install -q --no-deps onnxruntime==1.16.3
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

# PyTorch (the benchmark's reference) goes into its own folder with --no-deps:
# requirements-bench.txt says why; the benchmark (dmrnet.tools.bench) finds it there. The tests use it too, to
# check that the PyTorch DMRNet computes what ours does.
BENCH_SITE := $(VENV)/bench-site
$(BENCH_SITE)/.installed: requirements-bench.txt $(STAMP)
	$(PIP) install -q --no-deps --upgrade --target $(BENCH_SITE) -r requirements-bench.txt
	touch $@

test: venv $(BENCH_SITE)/.installed
	$(PY) -m pytest -q tests

# The embedded default: a DMRNet (L=6) on scikit-learn's digits, 10 epochs on the CPU (under a
# minute on 2 cores); writes runs/demo (log.jsonl, curves.png, best/last exports) and ends with
# the exported best model's test error. A new demo replaces the previous one.
demo: venv
	rm -rf $(RUNS)/demo
	$(PY) data/digits.py --out $(DATA)/digits
	$(PY) train/digits.py --data-dir $(DATA)/digits --save-dir $(RUNS)/demo
	$(PY) train/evaluate.py --prefix $(RUNS)/demo/best --dataset digits --data-dir $(DATA)/digits

params: venv
	$(PY) -m dmrnet.tools.analysis.params

# DMRNet-56 against GluonCV's ResNet-110 and PyTorch eager, in one run (dmrnet.tools.bench).
# make bench [MODEL=dmrnet56] [BATCH=64] [GPUS=0] [ARGS='--json']
bench: venv $(BENCH_SITE)/.installed
	$(PY) -m dmrnet.tools.bench --model $(or $(MODEL),dmrnet56) --batch-size $(or $(BATCH),64) \
	    $(if $(GPUS),--gpus $(GPUS)) $(ARGS)

# The float32 training step taken apart: fused BatchNorm+ReLU, the update alone, oneDNN's trace.
bench-step: venv
	$(PY) -m dmrnet.tools.bench.step_parts --model $(or $(MODEL),dmrnet56) \
	    --batch-size $(or $(BATCH),64) --trace $(ARGS)

clean-venv:
	rm -rf $(VENV)

# The GPU build verified on this CPU (about 4.3 GB in $(GPU_VENV), not part of make test): a
# stand-in libcuda.so.1 compiled at test time, then the GPU build's import, its refusals, a CPU
# training through it against the CPU build's, and exports across the two (tests/gpu).
GPU_VENV ?= .venv-gpu
test-gpu-build: venv
	$(MAKE) --no-print-directory venv VENV=$(GPU_VENV) BUILD=gpu
	DMRNET_GPU_VENV=$(abspath $(GPU_VENV)) $(PY) -m pytest -v -rsP tests/gpu

# First thing on a GPU machine: every GPU path of the project, a few minutes (tools/gpu_check.py).
gpu-check: venv
	$(PY) tools/gpu_check.py $(if $(GPUS),--gpus $(GPUS)) $(ARGS)

# --- data: each packer does nothing when its output is complete and verified -------------
data-digits: venv
	$(PY) data/digits.py --out $(DATA)/digits

data-cifar10: venv
	$(PY) data/cifar.py --dataset cifar10 --out $(DATA)/cifar10

data-cifar100: venv
	$(PY) data/cifar.py --dataset cifar100 --out $(DATA)/cifar100

data-svhn: venv
	$(PY) data/svhn.py --out $(DATA)/svhn

# Fashion-MNIST from Debian's package (apt-get install dataset-fashion-mnist) or the official files.
data-fashion: venv
	$(PY) data/fashion.py --out $(DATA)/fashion $(if $(FASHION_SRC),--src $(FASHION_SRC))

data-imagenet: venv
	@test -f $(DATA)/imagenet/imagenet_train.rec -o -n "$(ILSVRC)" || { \
	  echo "make data-imagenet: ImageNet cannot be downloaded; give the ILSVRC2012 root (train/ and val/ folders): make imagenet ILSVRC=/path/to/ILSVRC2012" >&2; exit 2; }
	@if [ -n "$(ILSVRC)" ]; then $(PY) data/imagenet.py --src $(ILSVRC) --out $(DATA)/imagenet; fi

bench-data: venv
	$(PY) -m dmrnet.tools.bench.data_pipeline

# --- training with the paper's recipes (Section 4) ---------------------------------------
cifar10: venv
	$(GPU_CHECK)
	$(MAKE) --no-print-directory data-cifar10
	$(PY) train/cifar.py --dataset cifar10 --data-dir $(DATA)/cifar10 $(TRAIN_FLAGS)

cifar100: venv
	$(GPU_CHECK)
	$(MAKE) --no-print-directory data-cifar100
	$(PY) train/cifar.py --dataset cifar100 --data-dir $(DATA)/cifar100 $(TRAIN_FLAGS)

svhn: venv
	$(GPU_CHECK)
	$(MAKE) --no-print-directory data-svhn
	$(PY) train/svhn.py --data-dir $(DATA)/svhn $(TRAIN_FLAGS)

imagenet: venv
	$(GPU_CHECK)
	$(MAKE) --no-print-directory data-imagenet
	$(PY) train/imagenet.py --data-dir $(DATA)/imagenet $(TRAIN_FLAGS)

fashion: venv
	$(GPU_CHECK)
	$(MAKE) --no-print-directory data-fashion
	$(PY) train/fashion.py --data-dir $(DATA)/fashion $(TRAIN_FLAGS)

# --- the paper's experiments (dmrnet.tools.experiments: resumable, skips finished runs) ----
EXP = --runs-dir $(RUNS) --data-root $(DATA) $(if $(GPUS),--gpus $(GPUS)) \
      $(if $(GPUS_PER_RUN),--gpus-per-run $(GPUS_PER_RUN)) $(if $(DATASET),--dataset $(DATASET)) \
      $(if $(SCALE),--scale $(SCALE)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(L),--L $(L))

table2 table3 table5 figure6 imagenet-compare: venv
	$(GPU_CHECK)
	$(PY) -m dmrnet.tools.experiments $@ $(EXP)
	$(PY) -m dmrnet.tools.experiments.report --runs-dir $(RUNS)

# The real experiment this machine can run: ResNet vs DILNet vs DMRNet at L=12 on the digits,
# 5 seeds each, one scaled recipe for all (about 6 minutes on 2 cores).
digits-compare: venv
	$(GPU_CHECK)
	$(MAKE) --no-print-directory data-digits
	$(PY) -m dmrnet.tools.experiments digits-compare --L 12 --epochs 4 $(EXP) -- --no-progress
	$(PY) -m dmrnet.tools.experiments.report digits --runs-dir $(RUNS)

# Fashion-MNIST (real, 70,000 images): the recipe is chosen on the validation split (55,000 /
# 5,000 of the training set), one seed of each family per candidate weight decay, the candidates
# side by side (the cores shared out); then the comparison at L=12, 5 seeds per family, on the
# full training set and the test set, FASHION_JOBS runs at a time (two one-thread runs train
# more images/s than one two-thread run on a 2-core CPU). Both resume: run the same command
# again after a stop. RUNS=results/fashion/runs keeps the runs in the repository, which is
# how they outlive a machine (results/fashion/runs/.gitignore leaves the checkpoints out).
FASHION_WD ?= 1e-4 5e-4
FASHION_JOBS ?= 2
fashion-recipe: data-fashion
	threads=$$(( $$(nproc) / $(words $(FASHION_WD)) )); [ $$threads -ge 1 ] || threads=1; \
	pids=; for wd in $(FASHION_WD); do \
	  OMP_NUM_THREADS=$$threads $(PY) -m dmrnet.tools.experiments fashion-compare \
	      --dataset fashion_val --seeds 1 --runs-dir $(RUNS)/fashion-recipe/wd$$wd \
	      --data-root $(DATA) -- --wd $$wd --no-progress & pids="$$pids $$!"; \
	done; status=0; for pid in $$pids; do wait $$pid || status=1; done; exit $$status
	$(PY) -m dmrnet.tools.experiments.recipe fashion_val $(RUNS)/fashion-recipe

fashion-compare: venv
	$(GPU_CHECK)
	$(MAKE) --no-print-directory data-fashion
	$(PY) -m dmrnet.tools.experiments fashion-compare $(EXP) \
	    $(if $(GPUS),,--jobs $(FASHION_JOBS)) -- --no-progress
	$(PY) -m dmrnet.tools.experiments.report fashion --runs-dir $(RUNS)

# Before the machine goes away (stop the runner first): stage the finished runs under RUNS and
# the checkpoints of the comparison's interrupted ones, for a commit; the next machine resumes
# them with the same make fashion-compare.
fashion-keep: venv
	git add -A $(RUNS)
	files=$$($(PY) -m dmrnet.tools.experiments.resumable $(RUNS)/fashion-compare) && \
	  if [ -n "$$files" ]; then git add -f $$files; fi

# The finished comparison into the repository: results, report, curves, seed 0's final models.
fashion-publish: venv
	$(PY) -m dmrnet.tools.experiments.publish fashion-compare --runs-dir $(RUNS) \
	    --out results/fashion --command 'make fashion-compare RUNS=$(RUNS)' \
	    $(if $(GPUS),,--at-a-time $(FASHION_JOBS))

report: venv
	$(PY) -m dmrnet.tools.experiments.report all --runs-dir $(RUNS)

# Exact analysis, no training: path lengths (Section 3.2, Figure 3) and information flow (Eq. 4-5).
paths: venv
	$(PY) -m dmrnet.tools.analysis.paths --L 54 --B 2 --json --plot $(RUNS)/analysis/paths_L54.png
	$(PY) -m dmrnet.tools.analysis.paths --figure3 $(RUNS)/analysis/figure3.png

flow: venv
	$(PY) -m dmrnet.tools.analysis.flow --L 54 --plot $(RUNS)/analysis/flow_L54.png
