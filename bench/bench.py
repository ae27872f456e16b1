"""`just bench`: the release binary under wrk on SQLite and PostgreSQL, beside the ceilings
measured in the same run (pgbench -S, the argon2 rate, GET /health/live), written to
BENCHMARKS.md. Bounded: each scenario runs SECONDS (default 8) seconds.

Usage: python3 bench/bench.py [sqlite] [postgres]   (needs wrk and pgbench)
"""

import atexit
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BINARY = os.path.join(TARGET, "release", "shelter")
SECONDS = int(os.environ.get("SECONDS_PER_SCENARIO", "8"))
ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SEED_USERS = 10_000
PASSWORD = "bench-password"
LUA = os.path.join(ROOT, "bench", "wrk")
rows = []  # (backend, scenario, figures dict)


AUTOGROUP = "/proc/sys/kernel/sched_autogroup_enabled"


@contextlib.contextmanager
def one_scheduling_group():
    """Turns the kernel's session autogroups off for the run, and back on after it.

    With them on, the CPU is shared per login session, not per thread: the server and wrk
    (one session) get half the cores and PostgreSQL (the service's session) the other half,
    whatever each needs, and under a saturating load the kernel left PostgreSQL off the CPU
    for 2-14 s at a time (a psql session answering every 100 ms went silent that long while
    wrk hit /health/live, which reads no database; CPU-bound loops alone did not do it).
    Every PostgreSQL figure then measured the scheduler: the list ranged 37-52 % of its
    ceiling with them on, 58-59 % with them off, in one run. Yields what the run had, for
    BENCHMARKS.md's header. BENCH_AUTOGROUP=keep leaves the setting alone."""
    try:
        with open(AUTOGROUP) as setting:
            before = setting.read().strip()
    except OSError:
        yield "no session autogroups (the kernel has none)"
        return
    if before == "0" or os.environ.get("BENCH_AUTOGROUP") == "keep":
        yield f"session autogroups {'off' if before == '0' else 'on, as BENCH_AUTOGROUP=keep asked'}"
        return
    try:
        with open(AUTOGROUP, "w") as setting:
            setting.write("0")
    except OSError as error:
        print(f"bench: cannot turn session autogroups off ({error}); PostgreSQL figures will "
              "swing with the scheduler", file=sys.stderr, flush=True)
        yield "session autogroups on (could not turn them off): PostgreSQL figures are unreliable"
        return
    try:
        yield "session autogroups off for the run (bench.py turned them off and back on)"
    finally:
        with open(AUTOGROUP, "w") as setting:
            setting.write(before)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, token=None, form=False):
    data, headers = None, {}
    if body is not None:
        if form:
            data = "&".join(f"{k}={v}" for k, v in body.items()).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null"), dict(response.headers)


def serve(command, ready_url, what, tries=200, **popen):
    """Starts `command` and waits until `ready_url` answers (`tries` tenths of a second)."""
    process = subprocess.Popen(command, **popen)
    # A scenario that fails must not leave its server running (and holding a port and
    # the CPU) after the bench has stopped.
    atexit.register(process.kill)
    for _ in range(tries):
        try:
            urllib.request.urlopen(ready_url, timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench: {what} did not start")


class Server:
    """One Shelter process; its RSS and CPU time are read from /proc."""

    def __init__(self, backend, database_url, secret, **settings):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp()
        env = dict(os.environ, SHELTER_PORT=str(self.port), SHELTER_DATABASE_URL=database_url,
                   SHELTER_SECRET_KEY=secret, RUST_LOG="warn",
                   # Benchmarks measure throughput, not the limits that guard it.
                   SHELTER_RATE_LIMIT_ENABLED="false", SHELTER_DATABASE_MAX_CONNECTIONS="16")
        env.update({f"SHELTER_{k.upper()}": str(v) for k, v in settings.items()})
        self.process = serve([BINARY], f"{self.base}/health/ready", f"shelter on {backend}",
                             cwd=self.dir, env=env)

    def rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)) / 1024

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk(url, connections=32, seconds=SECONDS, script=None, headers=(), env=None):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", os.path.join(LUA, script)]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **(env or {}))).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(label):
        found = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        return float(found.group(1)) * unit[found.group(2)] if found else float("nan")

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": latency("50%"), "p99": latency("99%"), "errors": errors}


def measured(server, backend, scenario, run, ceiling=None, note=""):
    cpu, peak = server.cpu_seconds(), [server.rss_mib()]
    sampling = threading.Event()

    def sample():
        while not sampling.wait(0.25):
            peak.append(server.rss_mib())
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    figures = run()
    sampling.set()
    sampler.join()
    figures["rss"] = max(peak)
    figures["cpu"] = (server.cpu_seconds() - cpu) / (time.monotonic() - started) * 100
    figures["ceiling"] = ceiling
    figures["note"] = note
    rows.append((backend, scenario, figures))
    print(f"bench: {backend} {scenario}: {figures['rps']:.0f} req/s, p99 {figures['p99']:.2f} ms",
          flush=True)
    return figures


def seed(backend, database_url, sqlite_path):
    """10,000 users beside the ones the scenarios create, sharing one real password hash
    (hashing each would take over a minute and measure nothing)."""
    columns = ("email, username, password_hash, is_active, is_superuser, email_verified, "
               "token_version, revision, created_at, updated_at")
    select = ("'seed' || n || '@example.com', 'seed' || n, password_hash, is_active, false, "
              "email_verified, 1, 1, created_at, updated_at")
    if backend == "postgres":
        sql = (f"INSERT INTO users ({columns}) SELECT {select} FROM users, "
               f"generate_series(1, {SEED_USERS}) AS n WHERE username = 'bench'")
        subprocess.run(["psql", "-q", database_url, "-c", sql], check=True)
        # A database in service has been vacuumed: visibility maps set, statistics current.
        subprocess.run(["psql", "-q", database_url, "-c", "VACUUM ANALYZE users"], check=True)
    else:
        import sqlite3
        with sqlite3.connect(sqlite_path) as db:
            db.execute(f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                       f"WHERE n < {SEED_USERS}) INSERT INTO users ({columns}) "
                       f"SELECT {select.replace('false', '0')} FROM users, s WHERE username = 'bench'")


def account(server, name, superuser_token=None):
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    user, _ = call("POST", f"{server.base}/users", body)
    if superuser_token is None:
        tokens, _ = call("POST", f"{server.base}/auth/token",
                         {"username": name, "password": PASSWORD}, form=True)
        return user, tokens["access_token"]
    return user, None


def run_backend(backend, argon2_ceiling):
    work = tempfile.mkdtemp()
    if backend == "postgres":
        name = f"shelter_bench_{os.getpid()}"
        subprocess.run(["psql", "-q", ADMIN_URL, "-c", f"CREATE DATABASE {name}"], check=True)
        database_url, sqlite_path = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", None
    else:
        sqlite_path = os.path.join(work, "bench.db")
        database_url = f"sqlite://{sqlite_path}?mode=rwc"
    try:
        secret = secrets.token_hex(32)  # one for both servers, so tokens stay valid
        server = Server(backend, database_url, secret, first_superuser_email="root@example.com",
                        first_superuser_username="root", first_superuser_password=PASSWORD)
        user, token = account(server, "bench")
        seed(backend, database_url, sqlite_path)
        admin, _ = call("POST", f"{server.base}/auth/token",
                        {"username": "root", "password": PASSWORD}, form=True)
        admin = admin["access_token"]
        _, headers = call("GET", f"{server.base}/users/{user['id']}", token=token)
        etag = headers.get("ETag") or headers.get("etag")
        auth = f"Authorization: Bearer {token}"
        # The hashing threads give their memory back after 2 idle seconds; start after that.
        time.sleep(3)

        live = measured(server, backend, "GET /health/live (framework floor)",
                        lambda: wrk(f"{server.base}/health/live"))["rps"]
        me = measured(server, backend, "GET /users/me, cache on",
                      lambda: wrk(f"{server.base}/users/me", headers=[auth]), ceiling=("live", live))
        measured(server, backend, "GET /users/{id}, If-None-Match (304)",
                 lambda: wrk(f"{server.base}/users/{user['id']}", headers=[auth, f"If-None-Match: {etag}"]),
                 ceiling=("live", live))
        measured(server, backend, "GET /users/{id} (200)",
                 lambda: wrk(f"{server.base}/users/{user['id']}", headers=[auth]), ceiling=("live", live))
        list_ceiling = pgbench_list(database_url) if backend == "postgres" else None
        listed = measured(server, backend, "GET /users?limit=100",
                          lambda: wrk(f"{server.base}/users?limit=100", headers=[f"Authorization: Bearer {admin}"]),
                          ceiling=("list", list_ceiling) if list_ceiling else None)
        if list_ceiling:
            simple = pgbench_list(database_url, "simple")
            listed["note"] = (f"{listed['rps'] / simple * 100:.0f} % of pgbench -f in its default, simple "
                              f"protocol ({simple:,.0f} tps)")
        measured(server, backend, "POST /auth/token (8 connections)",
                 lambda: wrk(f"{server.base}/auth/token", connections=8, script="login.lua",
                             env={"BENCH_USER": "bench", "BENCH_PASSWORD": PASSWORD}),
                 ceiling=("argon2", argon2_ceiling))
        measured(server, backend, "POST /users (8 connections)",
                 lambda: wrk(f"{server.base}/users", connections=8, script="signup.lua"),
                 ceiling=("argon2", argon2_ceiling))

        def reading_under_logins():
            logins = threading.Thread(target=lambda: wrk(
                f"{server.base}/auth/token", connections=8, script="login.lua",
                env={"BENCH_USER": "bench", "BENCH_PASSWORD": PASSWORD}))
            logins.start()
            figures = wrk(f"{server.base}/users/me", connections=8, headers=[auth])
            logins.join()
            return figures
        unloaded = measured(server, backend, "GET /users/me, 8 connections, alone",
                            lambda: wrk(f"{server.base}/users/me", connections=8, headers=[auth]))
        measured(server, backend, "GET /users/me, 8 connections, during login load",
                 reading_under_logins, note=f"p99 {{p99_ratio}} of alone ({unloaded['p99']:.2f} ms)")
        rows[-1][2]["note"] = rows[-1][2]["note"].replace(
            "{p99_ratio}", f"{rows[-1][2]['p99'] / unloaded['p99']:.1f}x")
        server.stop()

        server = Server(backend, database_url, secret, user_cache_seconds=0)
        measured(server, backend, "GET /users/me, cache off",
                 lambda: wrk(f"{server.base}/users/me", headers=[auth]),
                 ceiling=("pgbench", None) if backend == "postgres" else None)
        server.stop()
        return me
    finally:
        if backend == "postgres":
            subprocess.run(["psql", "-q", ADMIN_URL, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
        shutil.rmtree(work, ignore_errors=True)


def pgbench(url, clients, *arguments):
    """pgbench's transactions a second: `clients` clients on 2 threads for SECONDS."""
    out = subprocess.run(["pgbench", "-n", f"-c{clients}", "-j2", f"-T{SECONDS}", *arguments, url],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def pgbench_select_only():
    name = f"shelter_pgbench_{os.getpid()}"
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    subprocess.run(["psql", "-q", ADMIN_URL, "-c", f"CREATE DATABASE {name}"], check=True)
    try:
        subprocess.run(["pgbench", "-q", "-i", "-s", "10", url], check=True, capture_output=True)
        return pgbench(url, 32, "-S")
    finally:
        subprocess.run(["psql", "-q", ADMIN_URL, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


# The page of GET /users?limit=100 as the server asks for it (`summaries` in
# crates/persistence/src/users.rs); the server also reads the total and the caller.
LIST_SQL = ('SELECT "id", "email", "username", "is_active", "is_superuser", "email_verified", '
            '"totp_enabled" AND "totp_secret" IS NOT NULL, "created_at", "updated_at" '
            'FROM "users" ORDER BY "id" ASC LIMIT 100 OFFSET 0;\n')


def pgbench_list(database_url, protocol="prepared"):
    """The list's ceiling: its SELECT on the seeded database, 32 clients as wrk. Prepared,
    as the server runs it, is the ceiling; pgbench's default (simple) protocol is shown
    beside it."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(LIST_SQL)
    try:
        tps = pgbench(database_url, 32, "-M", protocol, "-f", script.name)
        print(f"bench: pgbench -f -M {protocol} (the page's SELECT) {tps:.0f} tps", flush=True)
        return tps
    finally:
        os.unlink(script.name)


def argon2_rate():
    out = subprocess.run(["cargo", "run", "--release", "--quiet", "-p", "shelter-crypto", "--example",
                          "argon2_rate", "--", str(SECONDS)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return float(re.search(r"([\d.]+) hashes/s", out).group(1))


def ws_figures():
    """The WebSocket scenarios of bench/ws.sh: memory per idle connection and fan-out."""
    # Its errors go to the terminal: a failed run says why.
    out = subprocess.run(["bash", os.path.join(ROOT, "bench", "ws.sh"), "1000", "50"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    print(out, flush=True)
    return out.strip()


def main():
    backends = sys.argv[1:] or ["sqlite", "postgres"]
    missing = [tool for tool in ("wrk", "pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench: {', '.join(missing)} not found; on Debian: apt-get install wrk postgresql-client postgresql-contrib")
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "shelter"],
                   cwd=ROOT, check=True)
    started = time.monotonic()
    with one_scheduling_group() as scheduling:
        ceilings = {"argon2": argon2_rate()}
        print(f"bench: argon2 ceiling {ceilings['argon2']:.1f} hashes/s", flush=True)
        if "postgres" in backends:
            ceilings["pgbench"] = pgbench_select_only()
            print(f"bench: pgbench -S {ceilings['pgbench']:.0f} tps", flush=True)
        for backend in backends:
            run_backend(backend, ceilings["argon2"])
        ws = ws_figures()
    write(backends, ceilings, ws, time.monotonic() - started, scheduling)


def write(backends, ceilings, ws, elapsed, scheduling):
    cpu = re.search(r"model name\s*:\s*(.+)", open("/proc/cpuinfo").read())
    memory = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) // 1024
    lines = [
        "# Benchmarks",
        "",
        f"Written by `just bench` (bench/bench.py) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: "
        f"{os.cpu_count()} cores ({cpu.group(1) if cpu else platform.processor()}), {memory} MiB, "
        f"{platform.system()} {platform.release()}. Release build, wrk -t2 on 127.0.0.1, "
        f"{SECONDS} s a scenario, 32 connections unless said, {SEED_USERS:,} seeded users; "
        f"{scheduling}. "
        f"The whole run took {elapsed / 60:.1f} min. One machine, shared and noisy: compare the "
        "ratios of one run, not absolute figures across runs.",
        "",
        f"Ceilings in the same run: argon2 (the configured parameters, every core) "
        f"{ceilings['argon2']:.1f} hashes/s" + (f"; `pgbench -S` (simple protocol, 32 clients, scale 10) "
                                                 f"{ceilings['pgbench']:,.0f} tps" if "pgbench" in ceilings else "") + ".",
        "",
        "| backend | scenario | req/s | p50 ms | p99 ms | errors | server RSS MiB | server CPU % | of its ceiling | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for backend, scenario, f in rows:
        ratio = ""
        if f["ceiling"]:
            kind, value = f["ceiling"]
            value = ceilings.get(kind) if value is None else value
            if value:
                label = {"live": "of /health/live", "argon2": "of argon2", "pgbench": "of pgbench -S",
                         "list": "of pgbench -f -M prepared, its SELECT"}[kind]
                ratio = f"{f['rps'] / value * 100:.0f} % {label}"
        lines.append(f"| {backend} | {scenario} | {f['rps']:,.0f} | {f['p50']:.2f} | {f['p99']:.2f} | "
                     f"{f['errors']} | {f['rss']:.1f} | {f['cpu']:.0f} | {ratio} | {f['note']} |")
    lines += ["", "WebSocket (SQLite, bench/ws.sh: 1,000 idle connections, then 50 messages to all):", "",
              "```", ws, "```", ""]
    path = os.path.join(ROOT, "BENCHMARKS.md")
    # Sections other tools write (the soak's, the token endpoints') stay as they were.
    previous = open(path).read() if os.path.exists(path) else ""
    kept = re.findall(r"<!-- kept: (?P<name>[\w-]+) -->.*?<!-- /kept: (?P=name) -->", previous, re.DOTALL)
    sections = [re.search(rf"<!-- kept: {name} -->.*?<!-- /kept: {name} -->", previous, re.DOTALL).group(0)
                for name in kept]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "".join(f"\n{section}\n" for section in sections))
    print("\n".join(lines))


def keep_section(name, text):
    """Puts `text` into BENCHMARKS.md as the section `name`, in place of its last version;
    `write` keeps it when it rewrites the rest."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    previous = open(path).read() if os.path.exists(path) else ""
    section = f"<!-- kept: {name} -->\n{text.rstrip()}\n<!-- /kept: {name} -->"
    pattern = rf"<!-- kept: {name} -->.*?<!-- /kept: {name} -->"
    if re.search(pattern, previous, re.DOTALL):
        updated = re.sub(pattern, lambda _: section, previous, flags=re.DOTALL)
    else:
        updated = previous.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as out:
        out.write(updated)


if __name__ == "__main__":
    main()
