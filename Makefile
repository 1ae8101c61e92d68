# The two entry points: `make run` (the whole embedded stack) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (log: $(VENV)/install.log) …"
	@$(VENV)/bin/pip install --disable-pip-version-check -c constraints.txt -e '.[test]' \
		> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/coffer run

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python bench/provision.py
	$(VENV)/bin/python bench/events.py
	$(VENV)/bin/python bench/operations.py
	$(VENV)/bin/python bench/backup.py
	$(VENV)/bin/python bench/failover.py

clean:
	rm -rf $(VENV) .coffer
