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

# What CI runs: starts PostgreSQL/Redis if needed, then fmt --check, clippy, the tests and
# the schema fuzzing on both databases.
ci:
    bash .ci/run

# Every benchmark scenario on SQLite and PostgreSQL beside its ceiling; writes BENCHMARKS.md.
bench:
    bash bench/run.sh

# Server memory under the login load with each allocator, beside the argon2 ceiling.
bench-memory:
    bash bench/memory.sh

# Two instances on the local PostgreSQL and Redis (:8101, :8102) and an SMTP catcher.
cluster:
    bash ops/cluster.sh start

cluster-stop:
    bash ops/cluster.sh stop

# Sign up on one instance, verify by the caught email, log in on the other, chat across.
smoke:
    /var/tmp/shelter-venv/bin/python ops/smoke.py

# Two release instances on PostgreSQL and Redis under a mixed Locust load while an instance
# is killed, Redis restarts and PostgreSQL is cut off; checks and a report (ops/soak.sh).
soak seconds="600":
    bash ops/soak.sh --seconds {{seconds}}
