# Developer entry points. `make check` is exactly what CI runs (.ci/run → ./dev test): lint,
# types, the web app's Vitest and freshness check, then pytest. The other targets are pieces.
.PHONY: check lint types test web fmt
check:
	./dev test
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
web:
	./dev web
