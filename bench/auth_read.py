"""An uncached authenticated read against its ceiling, `pgbench -S`, in one run.

Usage: python3 bench/auth_read.py BINARY [BINARY...]   (needs wrk and pgbench)

For each binary (say the build before a change and after it): a fresh PostgreSQL
database, the user cache off (SHELTER_USER_CACHE_SECONDS=0), then `GET /users/me` under
wrk (2 threads, 8 connections, SECONDS seconds). Beside them, `pgbench -S` with the same
8 connections on its own database: one indexed primary-key SELECT per transaction, the
most a round trip to this PostgreSQL can do. The ratio is what counts on a shared machine.
"""
import os
import re
import subprocess
import sys
import time

from bench import call, free_port

ADMIN = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SECONDS = int(os.environ.get("SECONDS_PER_SCENARIO", "8"))
BASE = ADMIN.rsplit("/", 1)[0]


def psql(sql, database="postgres"):
    subprocess.run(["psql", f"{BASE}/{database}", "-qAtc", sql], check=True, capture_output=True)


def wrk_rate(url, token):
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{SECONDS}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        check=True, capture_output=True, text=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    return rate, f"{p99.group(1)} {p99.group(2)}"


def pgbench_rate():
    psql("DROP DATABASE IF EXISTS bench_pgbench")
    psql("CREATE DATABASE bench_pgbench")
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", f"{BASE}/bench_pgbench"], check=True, capture_output=True)
    out = subprocess.run(
        ["pgbench", "-S", "-n", "-c8", "-j2", f"-T{SECONDS}", f"{BASE}/bench_pgbench"],
        check=True, capture_output=True, text=True,
    ).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def shelter_rate(binary):
    psql("DROP DATABASE IF EXISTS bench_auth_read")
    psql("CREATE DATABASE bench_auth_read")
    port = free_port()
    env = dict(os.environ)
    env.update({
        "SHELTER_PORT": str(port),
        "SHELTER_DATABASE_URL": f"{BASE}/bench_auth_read?sslmode=disable",
        "SHELTER_SECRET_KEY": "bench-only-secret-key-of-at-least-32-bytes",
        "SHELTER_USER_CACHE_SECONDS": "0",
        "SHELTER_RATE_LIMIT_ENABLED": "false",
        "RUST_LOG": "warn",
    })
    server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                call("GET", f"{base}/health/ready")
                break
            except OSError:
                time.sleep(0.05)
        call("POST", f"{base}/users", {"email": "ann@example.com", "username": "ann", "password": "bench-password"})
        token = call("POST", f"{base}/auth/token", {"username": "ann", "password": "bench-password"}, form=True)[0][
            "access_token"
        ]
        wrk_rate(f"{base}/users/me", token)  # warm-up: the pool and the prepared statements
        return wrk_rate(f"{base}/users/me", token)
    finally:
        server.terminate()
        server.wait()


def main():
    print("| what | req/s | p99 | of `pgbench -S` |")
    print("| --- | --- | --- | --- |")
    ceiling = pgbench_rate()
    for binary in sys.argv[1:]:
        rate, p99 = shelter_rate(binary)
        print(f"| `GET /users/me`, cache off, {binary} | {rate:,.0f} | {p99} | {rate / ceiling:.0%} |")
    print(f"| `pgbench -S`, 8 connections | {ceiling:,.0f} | | 100% |")


if __name__ == "__main__":
    main()
