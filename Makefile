# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUFF_RULES := --select E,F,W,I,B,UP,C90 --line-length 88 --extend-exclude migrations \
  --config "lint.mccabe.max-complexity=10"
RUFF_FORMAT := --line-length 88 --exclude migrations --config "format.quote-style='single'"

.PHONY: run test mail lint format bench browser clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The compiled catalogs (.mo) the app reads, from the .po files in git.
CATALOGS := $(wildcard app/translations/*/LC_MESSAGES/messages.po)
app/translations/.compiled: $(BIN)/.installed $(CATALOGS)
	$(BIN)/pybabel -q compile -d app/translations
	touch $@

# A random SECRET_KEY is written on first run; an existing one is kept.
.env:
	cp .env.example .env

secret-key: .env
	@grep -qE '^SECRET_KEY=.+' .env || { \
	  sed -i '/^SECRET_KEY=/d' .env; \
	  echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" >> .env; \
	  echo 'Wrote a random SECRET_KEY into .env'; }

run: $(BIN)/.installed app/translations/.compiled secret-key
	$(BIN)/flask db upgrade
	$(BIN)/flask run --host localhost --port 5000

# Debian's Chromium for the browser tests, and a font with Chinese glyphs
# for the pages in Chinese: installed when missing and root.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/wqy ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null) \
	      || echo 'Could not install $(BROWSER_PACKAGES); the browser tests may be skipped.'; \
	  else \
	    echo 'Browser tests need Debian packages: sudo apt-get install $(BROWSER_PACKAGES)'; \
	  fi; \
	fi

# axe-core for the accessibility checks, from the npm registry (package.json).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo 'npm not found: the accessibility checks will be skipped (install Node.js and npm).'; fi

test: $(BIN)/.installed-dev app/translations/.compiled browser node_modules/.installed
	$(BIN)/pytest -q tests.py tests $(PYTEST_ARGS)

mail: $(BIN)/.installed-dev
	$(BIN)/python -m aiosmtpd -n -l localhost:8025

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check $(RUFF_RULES) .
	$(BIN)/ruff format --check $(RUFF_FORMAT) .

format: $(BIN)/.installed-dev
	$(BIN)/ruff check $(RUFF_RULES) --fix .
	$(BIN)/ruff format $(RUFF_FORMAT) .

bench: $(BIN)/.installed-dev app/translations/.compiled
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts node_modules
