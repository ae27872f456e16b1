"""Reads against their ceilings in PostgreSQL, in one run (issue: speed and soak).

Usage: python3 bench/reads.py BINARY [BINARY...]   (needs wrk and pgbench)

For each binary (say the builds before and after a change), on a fresh database:
- `GET /users/me` with the user cache off (one query a request), wrk with 8 connections,
  beside `pgbench -S` with 8 connections: one primary-key SELECT a transaction, the most a
  round trip to this PostgreSQL can do;
- `GET /users?limit=100` over 10,000 seeded users, wrk with 32 connections, beside
  `pgbench -f` running the same `SELECT … ORDER BY id LIMIT 100`, prepared, with 32
  connections on the same database.
Each scenario runs SECONDS_PER_SCENARIO seconds (8), in ROUNDS rounds (3) that measure every
build and then the ceilings; each ratio is taken within its round and the median shown. The
ratios are what count on a shared machine.
"""
import os
import re
import subprocess
import sys

from bench import (LIST_SQL, SECONDS, call, free_port, one_scheduling_group, pgbench, pgbench_list,
                   seed, serve)

ADMIN = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BASE = ADMIN.rsplit("/", 1)[0]
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PASSWORD = "bench-password"


def psql(sql, database="postgres"):
    subprocess.run(["psql", "-q", f"{BASE}/{database}", "-c", sql], check=True, capture_output=True)


def fresh(database):
    psql(f"DROP DATABASE IF EXISTS {database}")
    psql(f"CREATE DATABASE {database}")
    return f"{BASE}/{database}"


def wrk(url, token, connections):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{SECONDS}s", "--latency",
               "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), f"{p99.group(1)} {p99.group(2)}"


def measure(binary):
    """The two reads of one build: (users/me rate, p99), (list rate, p99)."""
    url = fresh("bench_reads")
    port = free_port()
    env = dict(os.environ)
    env.update({
        "SHELTER_PORT": str(port),
        "SHELTER_DATABASE_URL": f"{url}?sslmode=disable",
        "SHELTER_SECRET_KEY": "bench-only-secret-key-of-at-least-32-bytes",
        "SHELTER_USER_CACHE_SECONDS": "0",
        "SHELTER_RATE_LIMIT_ENABLED": "false",
        "SHELTER_FIRST_SUPERUSER_EMAIL": "bench@example.com",
        "SHELTER_FIRST_SUPERUSER_USERNAME": "bench",
        "SHELTER_FIRST_SUPERUSER_PASSWORD": PASSWORD,
        "RUST_LOG": "warn",
    })
    base = f"http://127.0.0.1:{port}"
    server = serve([binary], f"{base}/health/ready", binary, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seed("postgres", url, None)
        token = call("POST", f"{base}/auth/token", {"username": "bench", "password": PASSWORD}, form=True)[0][
            "access_token"]
        wrk(f"{base}/users/me", token, 8)  # warm-up: the pool and the prepared statements
        me = wrk(f"{base}/users/me", token, 8)
        page = wrk(f"{base}/users?limit=100", token, 32)
        return me, page
    finally:
        server.terminate()
        server.wait()


def ceilings():
    """`pgbench -S` (8 connections) and `pgbench -f` running the page's SELECT (32)."""
    page_ceiling = pgbench_list(f"{BASE}/bench_reads")
    select_url = fresh("bench_pgbench")
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", select_url], check=True, capture_output=True)
    return pgbench(select_url, 8, "-S"), page_ceiling


def main():
    """Rounds of every build then the ceilings, so that the machine's drift falls on all of
    them alike; each ratio is taken within its round, and the median round is shown."""
    binaries = sys.argv[1:]
    rounds = []
    with one_scheduling_group() as scheduling:
        for number in range(ROUNDS):
            measured = [measure(binary) for binary in binaries]
            rounds.append((measured, ceilings()))
            print(f"reads: round {number + 1} of {ROUNDS} done", file=sys.stderr, flush=True)
    print(f"Scheduling: {scheduling}.\n")
    print("| what | req/s | p99 | of its ceiling (median of rounds) |")
    print("| --- | --- | --- | --- |")
    for index, binary in enumerate(binaries):
        for label, which, ceiling, name in (
                ("`GET /users/me`, cache off, 8 connections", 0, 0, "`pgbench -S`"),
                ("`GET /users?limit=100`, 32 connections", 1, 1, "`pgbench -f`")):
            ratios = sorted((measured[index][which][0] / limits[ceiling], measured[index][which])
                            for measured, limits in rounds)
            ratio, (rate, p99) = ratios[len(ratios) // 2]
            print(f"| {label}, {binary} | {rate:,.0f} | {p99} | {ratio:.0%} of {name} "
                  f"(rounds: {', '.join(f'{r:.0%}' for r, _ in ratios)}) |")
    for ceiling, name in ((0, "`pgbench -S`, 8 connections"),
                          (1, f"`pgbench -f` `{LIST_SQL.strip()}`, 32 connections, prepared")):
        values = sorted(limits[ceiling] for _, limits in rounds)
        print(f"| {name} | {values[len(values) // 2]:,.0f} (median) | | |")


if __name__ == "__main__":
    main()
