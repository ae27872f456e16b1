# Shelter's everyday commands; the README gives the same ones.

# Serve on 127.0.0.1:8000 with SQLite (shelter.db), the log mailer and in-process hubs.
run:
    cargo run --release

# All tests. PostgreSQL tests use TEST_DATABASE_URL (default: the local server) and skip
# with a printed reason when it does not answer, unless CI=true.
test:
    cargo test --workspace

lint:
    cargo clippy --workspace --all-targets -- -D warnings

fmt:
    cargo fmt --all

# What CI runs: starts PostgreSQL/Redis if needed, then fmt --check, clippy and the tests.
ci:
    bash .ci/run
