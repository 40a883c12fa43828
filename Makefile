# Two commands for a fresh machine: `make demo` (the course's main job) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test build validate clean
setup:
	bash scripts/setup.sh

demo: setup  ## build everything, simulate submissions for every module, autograde, print scores
	$(BIN)/course demo

test: setup  ## build the package here, then the whole test suite (pipeline tests also build a clean copy in a temp folder)
	$(BIN)/course build
	$(BIN)/python -m pytest

build: setup
	$(BIN)/course build

validate: build
	$(BIN)/course validate

clean:  ## generated files and run-time grading data
	rm -rf nbs/*.ipynb grading/source grading/release grading/submitted grading/autograded \
	       grading/feedback grading/gradebook.db grading/grades.csv
	find tinytorch -name '*.py' ! -name '__init__.py' -delete
