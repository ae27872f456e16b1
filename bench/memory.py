#!/usr/bin/env python3
"""Server memory under the login load, beside the argon2 ceiling measured in the same run.

For each binary (an allocator build), backend and concurrency: start Shelter on a fresh
database, read its idle RSS, run 500 signups then 500 logins over keep-alive connections
while sampling RSS every 20 ms, and read RSS again once idle. The login rate
is put beside the argon2 ceiling (hashes/s of the configured parameters on every core).

Usage: bench/memory.py CEILING_HASHES_PER_S LABEL=BINARY [LABEL=BINARY ...]
Environment: BENCH_BACKENDS (default "sqlite postgres"), BENCH_CONCURRENCY ("8 32"),
BENCH_REQUESTS (500), TEST_DATABASE_URL (the PostgreSQL server).
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """The highest RSS seen while running."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drive(port, requests, concurrency):
    """Sends `requests` (method, path, body, content type) over `concurrency` keep-alive
    connections; returns the statuses and the seconds taken."""
    local = threading.local()

    def send(request):
        method, path, body, content_type = request
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local.connection.request(method, path, body=body, headers={"content-type": content_type})
        response = local.connection.getresponse()
        response.read()
        return response.status

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(send, requests))
    return statuses, time.monotonic() - started


def database(backend, folder):
    if backend == "sqlite":
        return f"sqlite://{folder}/bench.db?mode=rwc", None
    name = f"shelter_membench_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", ADMIN_URL, "-qc", f"create database {name}"], check=True)
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}", name


def measure(binary, backend, concurrency, count):
    """One fresh server and database: idle, peak and after RSS, login rate, failures."""
    with tempfile.TemporaryDirectory() as folder:
        url, pg_name = database(backend, folder)
        port = free_port()
        env = dict(os.environ, SHELTER_DATABASE_URL=url, SHELTER_PORT=str(port),
                   SHELTER_SECRET_KEY="memory-benchmark-secret-key-0123456789",
                   SHELTER_RATE_LIMIT_ENABLED="false", RUST_LOG="warn")
        server = subprocess.Popen([binary], env=env, cwd=folder)
        try:
            for _ in range(100):
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health/live")
                    break
                except OSError:
                    time.sleep(0.1)
            time.sleep(2)
            idle = rss_mib(server.pid)
            users = [(f"mem{i}@example.com", f"mem{i}") for i in range(count)]
            signups = [("POST", "/users", json.dumps({"email": e, "username": u, "password": "benchmark-pw"}),
                        "application/json") for e, u in users]
            logins = [("POST", "/auth/token", f"username={u}&password=benchmark-pw",
                       "application/x-www-form-urlencoded") for _, u in users]
            sampler = Sampler(server.pid)
            sampler.start()
            signed, _ = drive(port, signups, concurrency)
            logged, seconds = drive(port, logins, concurrency)
            during = sampler.stop()
            time.sleep(3)
            after = rss_mib(server.pid)
            failures = sum(1 for s in signed if s != 201) + sum(1 for s in logged if s != 200)
            return idle, during, after, count / seconds, failures
        finally:
            server.terminate()
            server.wait()
            if pg_name:
                subprocess.run(["psql", ADMIN_URL, "-qc", f"drop database if exists {pg_name} with (force)"])


def main():
    ceiling = float(sys.argv[1])
    builds = [arg.split("=", 1) for arg in sys.argv[2:]]
    backends = os.environ.get("BENCH_BACKENDS", "sqlite postgres").split()
    concurrencies = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "8 32").split()]
    count = int(os.environ.get("BENCH_REQUESTS", "500"))
    print(f"argon2 ceiling (same run): {ceiling:.1f} hashes/s\n")
    print("| allocator | backend | conns | idle MiB | peak MiB (signups+logins) | after MiB | logins/s | of ceiling | failures |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, binary in builds:
        for backend in backends:
            for concurrency in concurrencies:
                idle, during, after, rate, failures = measure(binary, backend, concurrency, count)
                print(f"| {label} | {backend} | {concurrency} | {idle:.1f} | {during:.1f} | {after:.1f} "
                      f"| {rate:.1f} | {rate / ceiling:.0%} | {failures} |", flush=True)


if __name__ == "__main__":
    main()
