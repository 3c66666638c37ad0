# The two commands: `make run` serves the demo, `make test` runs every check CI runs.
.PHONY: run test lint bootstrap

bootstrap:
	@scripts/bootstrap

run: bootstrap
	.venv/bin/wavepick serve --demo

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: lint
	.venv/bin/python -m pytest -q -ra --durations=15 $(PYTEST_ARGS)
