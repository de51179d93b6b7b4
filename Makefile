# Developer entry points. `make check` is what CI runs (through .ci/run → scripts/test).
.PHONY: check lint types test fmt
check: lint types test
fmt:
	uv run ruff format .
	uv run ruff check --fix .
lint:
	uv run ruff format --check .
	uv run ruff check .
types:
	uv run mypy
test:
	uv run pytest
