# The two commands the README opens with: `make serve` and `make test`.
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: serve test lint bench install clean

install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --quiet

serve: install  ## start the gateway on http://127.0.0.1:8000 (SQLite + demo test provider by default)
	$(UV) run --frozen lngate serve --host 127.0.0.1 --port 8000

test: install   ## run the whole test suite (starts real LNbits, relay + NWC wallet, SMTP)
	$(UV) run --frozen pytest

lint: install   ## ruff over the code, mypy over src/ (its settings are in pyproject.toml)
	$(UV) run --frozen ruff check src tests benchmarks
	$(UV) run --frozen mypy

bench: install  ## quick pass of every benchmark script, ~6 min (--full: docs/benchmarks.md)
	$(UV) run --frozen python benchmarks/run_all.py

clean:
	rm -rf .venv var .pytest_cache
