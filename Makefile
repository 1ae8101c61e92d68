# The two entry points: `make run` (the whole embedded stack) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean engine-tools

# MariaDB's physical backups need mariadb-backup, a Debian package of its own (not
# part of mariadb-server); installed when missing and this runs as root
engine-tools:
	@command -v mariadb-backup >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then echo "installing mariadb-backup (apt) …"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-backup >/dev/null; \
		else echo "mariadb-backup is missing: MariaDB backups will fail (apt-get install mariadb-backup)"; fi; }

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (log: $(VENV)/install.log) …"
	@$(VENV)/bin/pip install --disable-pip-version-check -c constraints.txt -e '.[test]' \
		> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	touch $(STAMP)

run: $(STAMP) engine-tools
	$(VENV)/bin/coffer run

test: $(STAMP) engine-tools
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP) engine-tools
	$(VENV)/bin/python bench/provision.py
	$(VENV)/bin/python bench/events.py
	$(VENV)/bin/python bench/api.py
	$(VENV)/bin/python bench/operations.py
	$(VENV)/bin/python bench/backup.py
	$(VENV)/bin/python bench/failover.py

clean:
	rm -rf $(VENV) .coffer
