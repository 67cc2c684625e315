# The README's two commands: `make demo` (set up + run the main job on built-in sample data)
# and `make test` (set up + lint + package checks + the core install + the test suite). .ci/run calls `make test`.
.PHONY: setup demo lint test test-fast bench

setup:
	@bash infra/setup.sh

demo: setup
	.venv/bin/imagesr demo

lint: setup
	.venv/bin/ruff check .
	@bash .ci/check_package.sh

test: lint
	@bash .ci/check_core_install.sh
	.venv/bin/python -m pytest -q -ra

test-fast: setup
	.venv/bin/python -m pytest -q -ra -m "not slow"
