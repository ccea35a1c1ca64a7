# Two set-up commands: `make run` and `make test`. Each creates/updates .venv by itself.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
SHARED ?= $(abspath ../shared)
KODAK ?= $(if $(CODEC_KODAK_DIR),$(CODEC_KODAK_DIR),$(SHARED)/data/kodak)
BENCH_OUT ?= bench-out
BENCH_ARGS ?=
# e.g. make run RUN_ARGS='--debug' (DEBUG on, runserver) or RUN_ARGS='--web gunicorn --port 8080'
RUN_ARGS ?=

.PHONY: venv run test lint bench bench-quick bench-rd bench-faces bench-gallery bench-scaleout bench-gpu reliability soak train-encoder train-denoiser train-decoder train-entropy clean

$(STAMP): requirements.txt requirements-ocr.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel, never the CUDA build
	$(BIN)/pip install -q $(PIP_LINKS) torch==2.13.0
	$(BIN)/pip install -q $(PIP_LINKS) -r requirements.txt
	$(BIN)/pip install -q $(PIP_LINKS) --no-deps -r requirements-ocr.txt
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/python scripts/run_stack.py $(RUN_ARGS)

lint: venv
	$(BIN)/ruff check .

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest tests

bench: venv
	$(BIN)/python -m codec bench --images $(KODAK) --bpp 0.05,0.10,0.15 --effort default --out $(BENCH_OUT) $(BENCH_ARGS)

bench-quick: venv
	$(BIN)/python -m codec bench --images $(KODAK) --bpp 0.05,0.10,0.15 --limit 4 --effort default --out $(BENCH_OUT)-quick $(BENCH_ARGS)

# RD curves + BD-rate vs AVIF/WebP/JPEG XL on Kodak (24) and 24 held-out training windows, 7 rates,
# latent efforts fast and default (many hours on 2 cores; rows are cached in bench-out/rd-cache)
bench-rd: venv
	$(BIN)/python -m codec.tools.bench.rd --kodak $(KODAK) --heldout 24 --efforts fast,default --out docs/bench/rd $(BENCH_ARGS)

# Faces and text (issue 12): identity distance / landmark shift / still-detected per face for the latent,
# AVIF and WebP at the same bytes on the held-out faces set (docs/bench/faces/set.json; whole photos +
# 256×256 face photos), the face protection before/after on the portraits, the gallery's target search
# with and without region latents (faces coded as small latents of their own), the eye-shape check on/off
# on the held-out training faces at 512 px (12 min), OCR CER of rendered text, then
# docs/bench/faces/report.md from those JSON files (about 75 minutes on 2 cores)
bench-faces: venv
	$(BIN)/python scripts/faces_bench.py --splits test --full-splits test --crops --effort default --out docs/bench/faces/results_test_crops.json
	$(BIN)/python scripts/faces_protection_bench.py
	$(BIN)/python scripts/faces_regions_bench.py --images kodim04,kodim15,kodim18,astronaut --bpp 0.10 --out docs/bench/faces/regions/test_0.10
	$(BIN)/python scripts/eye_protection_bench.py
	$(BIN)/python scripts/patch_margin_probe.py --split heldout --out docs/bench/faces/patch_margin_heldout.json
	$(BIN)/python scripts/text_bench.py
	$(BIN)/python scripts/faces_report.py

# Photos through the real worker pipeline with a per-stage profile, photos/min, peak RSS and the
# Upload→READY / stock-decode ratio (issue 13); results in docs/bench/gallery/<label>.json|.md
BENCH_GALLERY_ARGS ?= --kodak 3 --large 1 --twelve 1 --label latest
bench-gallery: venv
	$(BIN)/python scripts/bench_gallery.py $(BENCH_GALLERY_ARGS)

# Scale-out check (issue 13 item 5): a 50-photo batch over HTTP to web + N encoding workers (distinct
# --hostname, -c 1, cores/N threads each) on one Redis and one PostgreSQL database (DATABASE_URL on
# SCALEOUT_PG, default postgres://postgres@127.0.0.1:5432), N = 1 then 2: photos/min, per-worker
# counts, no photo encoded twice; docs/bench/gallery/scaleout-<date>.json|.md
BENCH_SCALEOUT_ARGS ?=
bench-scaleout: venv
	$(BIN)/python scripts/scale_out.py $(BENCH_SCALEOUT_ARGS)

# Worker throughput with dynamic batching (issue 13 item 4): photos/s at batch 1/8/32 through
# codec.encode_result in B threads on one batched model, plus the bare model's images/s; for a lent
# GPU (CPU works, slowly). docs/bench/gpu/ (throughput.json|md)
BENCH_GPU_ARGS ?= --photos 64 --batches 1,8,32
bench-gpu: venv
	$(BIN)/python -m codec.tools.bench.throughput --out docs/bench/gpu $(BENCH_GPU_ARGS)

reliability: venv
	$(BIN)/python scripts/reliability.py

# 30-minute soak of the whole stack with the shipped defaults: mixed uploads/views/deletes, kill -9 of
# the worker, Redis killed or paused at random; 0 lost, 0 stuck, 0 5xx outside the faults, memory flat.
# Writes docs/bench/reliability/soak-<date>.json|.md. e.g. make soak SOAK_ARGS='--minutes 5'
SOAK_ARGS ?=
soak: venv
	$(BIN)/python scripts/soak.py $(SOAK_ARGS)

train-encoder: venv
	$(BIN)/python -m codec.tools.training.train_encoder $(TRAIN_ARGS)

# the latent denoiser of codec/zoo (learned dequantization, issue 14 item 2; README there)
train-denoiser: venv
	$(BIN)/python -m codec.tools.training.train_denoiser $(TRAIN_ARGS)

train-decoder: venv
	$(BIN)/python -m codec.tools.training.train_decoder $(TRAIN_ARGS)

train-entropy: venv
	$(BIN)/python -m codec.tools.training.train_entropy $(TRAIN_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
