"""The OpenID Connect provider's token endpoint under load, beside its ceiling measured in
the same run: the RS256 signing rate of one core (crates/crypto/examples/rs256_rate.rs).
Per backend: `client_credentials` under wrk, and `client_credentials`, `refresh_token` and
one whole code flow (authorize with the consent remembered, then the exchange) under
`oidc_bench` (crates/shelter/examples/oidc_bench.rs), which follows each answer as a client
does. Prints a Markdown table; the server's peak RSS is read from /proc.

Usage: python3 bench/oidc.py [sqlite] [postgres]   (release builds of shelter, oidc_bench
and rs256_rate in $CARGO_TARGET_DIR; wrk)
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the Server, wrk and database helpers)

RELEASE = os.path.join(bench.TARGET, "release")
SECONDS = int(os.environ.get("SECONDS_PER_SCENARIO", "8"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
ADMIN_EMAIL, ADMIN_PASSWORD = "bench-admin@example.com", "bench-admin-password"


def rs256_rate():
    out = subprocess.run([os.path.join(RELEASE, "examples", "rs256_rate"), "4"],
                         capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if "signatures per second" in l)
    return float(line.rsplit(":", 1)[1])


def peak_rss(server, stop, peak):
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_mib())
        time.sleep(0.2)


def run(backend):
    secret = "bench-secret-key-0123456789abcdef0123456789"
    if backend == "sqlite":
        folder = tempfile.mkdtemp()
        url = f"sqlite://{folder}/bench.db?mode=rwc"
    else:
        name = f"shelter_oidc_bench_{os.getpid()}"
        subprocess.run(["psql", bench.ADMIN_URL, "-qc", f"drop database if exists {name}"], check=True)
        subprocess.run(["psql", bench.ADMIN_URL, "-qc", f"create database {name}"], check=True)
        url = bench.ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    server = bench.Server(backend, url, secret, first_superuser_email=ADMIN_EMAIL,
                          first_superuser_username="bench_admin",
                          first_superuser_password=ADMIN_PASSWORD)
    stop, peak = threading.Event(), [server.rss_mib()]
    threading.Thread(target=peak_rss, args=(server, stop, peak), daemon=True).start()
    out = subprocess.run([os.path.join(RELEASE, "examples", "oidc_bench"), server.base, ADMIN_EMAIL,
                          ADMIN_PASSWORD, str(CONCURRENCY), str(SECONDS)],
                         capture_output=True, text=True, check=True).stdout
    phases = {p["phase"]: p for p in map(json.loads, out.splitlines())}
    token, _ = bench.call("POST", f"{server.base}/auth/token",
                          {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, form=True)
    client, _ = bench.call("POST", f"{server.base}/oauth/clients",
                           {"name": "wrk", "grant_types": ["client_credentials"]},
                           token=token["access_token"])
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    phases["client_credentials (wrk)"] = bench.wrk(f"{server.base}/oauth/token", connections=CONCURRENCY,
                                                  seconds=SECONDS, script="client_credentials.lua",
                                                  env={"BENCH_BASIC": basic})
    stop.set()
    server.stop()
    return phases, peak[0]


def main():
    backends = sys.argv[1:] or ["sqlite", "postgres"]
    ceiling = rs256_rate()
    print(f"RS256 signatures per second, one core, this run: {ceiling:.0f}")
    print()
    print("| backend | scenario | per second | p50 ms | p99 ms | signatures each | share of the 2-core RS256 ceiling | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    signatures = {"client_credentials": 1, "client_credentials (wrk)": 1, "refresh_token": 2, "code_flow": 2}
    for backend in backends:
        phases, rss = run(backend)
        for name, figures in phases.items():
            rate = figures.get("per_second", figures.get("rps"))
            share = rate * signatures[name] / (2 * ceiling)
            print(f"| {backend} | {name} | {rate:.0f} | {figures.get('p50_ms', figures.get('p50')):.2f} | "
                  f"{figures.get('p99_ms', figures.get('p99')):.2f} | {signatures[name]} | {share:.0%} | {rss:.0f} |")


if __name__ == "__main__":
    main()
