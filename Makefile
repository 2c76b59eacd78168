# folkgen — `make run` opens the app, `make test` runs the tests. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.folkgen-setup
# Debian packages: abc2midi, timidity with a real General MIDI patch set, ALSA headers for simpleaudio,
# a serif font for the scores' titles and tempo (resvg draws text with the system's fonts), and a C
# compiler for the C kernels (core/q4_kernel.c, core/copy_kernel.c: core/native.py).
DEBS := abcmidi timidity fluid-soundfont-gm libasound2-dev fonts-dejavu-core gcc libc6-dev
MITDL := mitdeeplearning==0.7.5

KERNEL := core/_native.so

.PHONY: setup sysdeps bytecode run test lint bench screenshots default-model clean

setup: sysdeps $(STAMP) bytecode $(KERNEL)

# The C kernels (core/native.py): without them (no C compiler) sampling runs on numpy and torch alone.
$(KERNEL): core/q4_kernel.c core/copy_kernel.c $(STAMP)
	@$(BIN)/python -m core.native || echo "The C kernels were not built: sampling runs on numpy and torch alone."

# Installs the Debian packages when run as root and something is missing; otherwise says what to do.
sysdeps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "folkgen needs these Debian packages: $$missing"; \
	    echo "  sudo apt-get install $$missing"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" "setuptools>=64,<81" wheel
	# torch first and exact: the CPU wheel on disk; an open range would fetch a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# The default corpus. --no-deps: its declared dependencies pull TensorFlow and dozens more.
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation $(MITDL)
	touch $@

# The project's own modules compiled, as pip compiles what it installs: the editable install leaves
# them as sources, and where PYTHONDONTWRITEBYTECODE is set every start compiled them again
# (~0.1 s of the app's first frame). Files already up to date are skipped.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q core folkgen_tui >/dev/null

run: setup
	$(BIN)/folkgen-tui

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check core folkgen_tui tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/app_startup.py
	$(BIN)/python bench/app_training.py
	$(BIN)/python bench/early_keys.py
	$(BIN)/python bench/terminal_end.py
	$(BIN)/python bench/sampling_speed.py
	$(BIN)/python bench/corpus_check.py
	$(BIN)/python bench/tune_quality.py --grammar
	$(BIN)/python bench/tune_quality.py --no-grammar
	$(BIN)/python bench/music_quality.py
	$(BIN)/python bench/score_engraving.py
	$(BIN)/python bench/library_speed.py
	$(BIN)/python bench/library_screen.py
	$(BIN)/python bench/time_to_quality.py
	$(BIN)/python bench/train_scale.py
	$(BIN)/python bench/long_session.py  # 30 minutes

# The shipped model: the default recipe on the default corpus, best checkpoint by validation,
# weights only. DEFAULT_MODEL_STEPS is its length (steps, not minutes, so it reproduces anywhere).
DEFAULT_MODEL_STEPS ?= 3000
default-model: setup
	mkdir -p build/default-model
	$(BIN)/folkgen train --preset default --steps $(DEFAULT_MODEL_STEPS) --seed 0 \
	  --out build/default-model/train.pt --json --force
	$(BIN)/folkgen export build/default-model/train.best.pt core/models/default.pt --force
	# The grammar's state table the sampler reads instead of building (core/grammar_table.py).
	$(BIN)/python -m core.grammar_table

# The README's screenshots are the snapshot tests' SVGs: this regenerates them from the live app.
screenshots: setup
	$(BIN)/python -m pytest -q tests/test_app_snapshots.py --snapshot-update

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info $(KERNEL)
