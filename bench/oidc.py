"""The OpenID Connect provider's token endpoint under load, beside its ceiling measured in
the same run: the RS256 signing rate of one core (crates/crypto/examples/rs256_rate.rs).
Per backend: `client_credentials` under wrk, and `client_credentials`, `refresh_token` and
one whole code flow (authorize with the consent remembered, then the exchange) under
`oidc_bench` (crates/shelter/examples/oidc_bench.rs), which follows each answer as a client
does. Prints a Markdown table; the server's peak RSS is read from /proc.

Usage: python3 bench/oidc.py [sqlite] [postgres] [--benchmarks]   (release builds of shelter, oidc_bench
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
    """Prints the table; with --benchmarks also puts it, and the figures per core beside
    Keycloak's and Zitadel's published ones, into BENCHMARKS.md."""
    keep = "--benchmarks" in sys.argv
    backends = [a for a in sys.argv[1:] if a != "--benchmarks"] or ["sqlite", "postgres"]
    cores = os.cpu_count()
    signatures = {"client_credentials": 1, "client_credentials (wrk)": 1, "refresh_token": 2, "code_flow": 2}
    with bench.one_scheduling_group() as scheduling:
        ceiling = rs256_rate()
        measured = [(backend, *run(backend)) for backend in backends]
    lines = [f"RS256 signatures per second, one core, this run: {ceiling:.0f}", "",
             "| backend | scenario | per second | per core | p50 ms | p99 ms | signatures each "
             "| share of the RS256 ceiling of every core | peak RSS MiB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for backend, phases, rss in measured:
        for name, figures in phases.items():
            rate = figures.get("per_second", figures.get("rps"))
            share = rate * signatures[name] / (cores * ceiling)
            lines.append(f"| {backend} | {name} | {rate:.0f} | {rate / cores:.0f} | "
                         f"{figures.get('p50_ms', figures.get('p50')):.2f} | "
                         f"{figures.get('p99_ms', figures.get('p99')):.2f} | {signatures[name]} | {share:.0%} | {rss:.0f} |")
    print("\n".join(lines))
    if keep:
        bench.keep_section("token-endpoints", "\n".join([
            "## Token endpoints beside the RS256 ceiling (`python3 bench/oidc.py --benchmarks`)", "",
            f"Release build, {cores} cores shared by the server, its database and the load generator; "
            f"{CONCURRENCY} clients, {SECONDS} s a scenario; {scheduling}. Database writes per exchange: "
            "`client_credentials` none; `refresh_token` one transaction (the presented token spent, "
            "its successor inserted); the code flow one transaction at the exchange (the "
            "authorization and its refresh token), the consent being remembered.", "", *lines, "",
            "For scale, per core (a vCPU): Keycloak's sizing guide plans 120 client-credential "
            "grants and 120 refreshes a second per vCPU, on a database of its own; Zitadel's "
            "published v4 benchmark reaches 18 introspections a second on 7 containers (about 3 "
            "per container). The \"per core\" column above divides by every core of this machine, "
            "which also ran PostgreSQL and the load generator."]))


if __name__ == "__main__":
    main()
