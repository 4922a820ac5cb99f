# certctl's developer commands: thin wrappers over cargo, npm and buf.
# `just --list` shows them. No just? `pip install rust-just`.

# Run every role with demo data on http://127.0.0.1:8080, building the GUI when needed
dev *ARGS:
    ./scripts/demo {{ARGS}}

# Rust tests (PostgreSQL too when CERTCTL_TEST_DATABASE_URL is set), then the GUI's unit tests
test: web-deps
    cargo test --workspace
    npm --prefix web test

# rustfmt, clippy, buf lint, and a check that the generated TypeScript clients are current
lint: web-deps
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    web/node_modules/.bin/buf lint
    npm --prefix web run check-gen

# Regenerate the GUI's TypeScript clients from proto/ (cargo generates the Rust side at build time)
gen: web-deps
    npm --prefix web run gen

# Everything CI runs, PostgreSQL, schemathesis and the browser suite included (needs root)
ci:
    bash .ci/run

[private]
web-deps:
    test -f web/node_modules/.package-lock.json || (cd web && npm ci --no-audit --no-fund)
