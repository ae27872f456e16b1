"""`just soak`: two release instances on one PostgreSQL and one Redis under a steady mixed
load from Locust (ops/soak/locustfile.py), while faults strike on a schedule: `kill -9` of
one instance (started again at once), a Redis restart, and PostgreSQL cut off for 5 seconds
by the TCP proxy the instances reach it through. Afterwards it checks what an operator
relies on, prints a report, and exits 1 if a check failed:

- every signup answered 201 exists exactly once, and its welcome email arrived (at least
  once; duplicates counted);
- no answer was a 500; during a fault only 503 with Retry-After, 429, or no answer from the
  instance that was killed; outside the faults, only the answers the protocol expects;
- no refresh that followed the protocol was refused;
- each instance's RSS in the last window within 10 % of its second window (a window is a
  minute, or a sixth of a shorter run), the pools idle and within their size, file
  descriptors and threads back to where they were before the load;
- p50/p99 of GET /users/me outside the faults, and how long each fault took to recover from.

Usage: soak.py --binary PATH [--seconds 600] [--users 60] [--report FILE]
Needs psql, redis-server, and Locust in the Python running it (ops/soak.sh sets that up).
"""

import argparse
import asyncio
import contextlib
import json
import mailbox
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from bench import free_port, keep_section  # noqa: E402 (bench/ is a folder of scripts, not a package)

ADMIN = ("soak-admin@example.com", "soak_admin", "soak-admin-password")
REDIRECT_URI = "http://127.0.0.1:9/callback"
SETTLE = 10.0  # seconds after a fault ends during which its errors are excused
POOL = 10  # SHELTER_DATABASE_MAX_CONNECTIONS of each instance
SHARED = os.cpu_count() or 1  # and the connections its signed-in reads share, one a worker (pipelined.rs)


def http(method, url, body=None, token=None):
    """(status, headers, parsed JSON or text) of one request; status 0 when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    except OSError:
        return 0, {}, None
    text = raw.decode(errors="replace")
    with contextlib.suppress(ValueError):
        return status, headers, json.loads(text)
    return status, headers, text


def metric(base, name):
    status, _, text = http("GET", f"{base}/metrics")
    if status != 200:
        return None
    found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def lowest(base, name, reads=6):
    """The gauge's lowest value over a few of its one-second samples: a connection the
    outbox's or the back-channel's one-second poll holds for a moment is in use, a leaked one
    is in use in every sample."""
    values = []
    for _ in range(reads):
        values.append(metric(base, name))
        if not values[-1]:
            break
        time.sleep(1.2)
    known = [v for v in values if v is not None]
    return min(known) if known else None


def peers(pid):
    """The TCP sockets of a process by the port at their other end (or "listening")."""
    out = subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout
    counts = {}
    for line in out.splitlines():
        if f"pid={pid}," in line:
            fields = line.split()
            key = "listening" if fields[0] == "LISTEN" else f":{fields[4].rsplit(':', 1)[1]}"
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key} ×{n}" for key, n in sorted(counts.items()))


def proc(pid):
    """RSS in MiB, open file descriptors, sockets among them, threads; None once it is gone."""
    try:
        status = open(f"/proc/{pid}/status").read()
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return None
    rss = re.search(r"VmRSS:\s+(\d+)", status)
    if rss is None:  # a zombie
        return None
    rss = int(rss.group(1)) / 1024
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    return rss, len(fds), sum(fd.startswith("socket:") for fd in fds), threads


class Proxy:
    """The instances' only way to PostgreSQL. `cut` closes every connection through it and
    stops listening, so new connections are refused, until the cut ends."""

    def __init__(self, port, target_port):
        self.port, self.target_port = port, target_port
        self.server, self.live = None, set()

    async def listen(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer, server_writer)
        self.live.add(pair)

        async def pipe(reader, writer):
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        self.live.discard(pair)

    def close(self):
        self.server.close()
        for pair in list(self.live):
            for writer in pair:
                writer.transport.abort()

    async def cut(self, seconds):
        self.close()
        await asyncio.sleep(seconds)
        await self.listen()


class Instance:
    def __init__(self, index, binary, port, env, folder):
        self.index, self.binary, self.port, self.env, self.folder = index, binary, port, env, folder
        self.base = f"http://127.0.0.1:{port}"
        self.process, self.lives = None, []  # lives: [(pid, ready at, baseline proc())]

    async def start(self):
        log = open(os.path.join(self.folder, f"shelter-{self.port}.log"), "a")  # noqa: SIM115
        self.process = subprocess.Popen([self.binary, "serve"], env={**os.environ, **self.env,
                                                                     "SHELTER_PORT": str(self.port)},
                                        stdout=log, stderr=log)
        await self.ready()
        await asyncio.sleep(2)  # the pool opens in the background just after start
        self.lives.append((self.process.pid, time.time(), proc(self.process.pid)))

    async def ready(self, deadline=60):
        stop = time.time() + deadline
        while time.time() < stop:
            if (await asyncio.to_thread(http, "GET", f"{self.base}/health/ready"))[0] == 200:
                return time.time()
            await asyncio.sleep(0.1)
        raise SystemExit(f"soak: the instance on :{self.port} did not get ready; see its log in {self.folder}")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)


class Redis:
    def __init__(self, port, folder):
        self.port, self.folder, self.process = port, folder, None

    async def start(self):
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", self.folder],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout == b"PONG\n":
                return
            await asyncio.sleep(0.1)
        raise SystemExit("soak: redis-server did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


class Soak:
    def __init__(self, args):
        self.args = args
        self.folder = tempfile.mkdtemp(prefix="shelter-soak-")
        self.database = f"shelter_soak_{os.getpid()}"
        self.admin_url = args.database_url
        self.direct_url = args.database_url.rsplit("/", 1)[0] + "/" + self.database
        self.proxy = Proxy(free_port(), int(re.search(r":(\d+)/", args.database_url + "/").group(1)))
        self.redis = Redis(free_port(), self.folder)
        self.mail = os.path.join(self.folder, "mail")
        self.faults = []  # (name, started, ended, ready again at)
        self.samples = []  # (time, instance index, pid, proc())
        self.instances = []

    def psql(self, url, sql):
        return subprocess.run(["psql", url, "-Atqc", sql], capture_output=True, text=True, check=True).stdout

    async def set_up(self):
        self.psql(self.admin_url, f"create database {self.database}")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.mail, sub))
        smtp_port = free_port()
        self.smtp = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                                      "-c", "aiosmtpd.handlers.Mailbox", self.mail],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await self.redis.start()
        await self.proxy.listen()
        ports = [free_port(), free_port()]
        self.origin = f"http://localhost:{ports[0]}"
        env = {
            "SHELTER_ENV": "production", "SHELTER_SECRET_KEY": secrets.token_hex(32),
            "SHELTER_DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.proxy.port}/{self.database}?sslmode=disable",
            "SHELTER_DATABASE_MAX_CONNECTIONS": str(POOL),
            "SHELTER_REDIS_URL": f"redis://127.0.0.1:{self.redis.port}", "SHELTER_REDIS_PREFIX": "soak",
            "SHELTER_EMAIL_TRANSPORT": "smtp", "SHELTER_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "SHELTER_PUBLIC_URL": self.origin, "SHELTER_TRUSTED_PROXIES": "127.0.0.1",
            "SHELTER_FIRST_SUPERUSER_EMAIL": ADMIN[0], "SHELTER_FIRST_SUPERUSER_USERNAME": ADMIN[1],
            "SHELTER_FIRST_SUPERUSER_PASSWORD": ADMIN[2], "SHELTER_LOG_FORMAT": "json",
        }
        for index, port in enumerate(ports):
            instance = Instance(index, self.args.binary, port, env, self.folder)
            await instance.start()  # the first one migrates
            self.instances.append(instance)
        base = self.instances[0].base
        # Through threads: the proxy serving the instances' queries runs on this loop.
        _, _, pair = await asyncio.to_thread(http, "POST", f"{base}/auth/token",
                                             {"username": ADMIN[0], "password": ADMIN[2]})
        status, _, client = await asyncio.to_thread(http, "POST", f"{base}/oauth/clients", {
            "name": "soak", "redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code", "refresh_token"]},
            token=pair["access_token"])
        if status != 201:
            raise SystemExit(f"soak: registering the OAuth client: {status} {client}")
        self.client = client

    async def sample(self):
        while True:
            now = time.time()
            for instance in self.instances:
                if instance.process.poll() is None:
                    self.samples.append((now, instance.index, instance.process.pid, proc(instance.process.pid)))
            await asyncio.sleep(1)

    async def fault(self, name, at, strike):
        await asyncio.sleep(max(0.0, at - time.time()))
        started = time.time()
        print(f"soak: {name}", flush=True)
        ended = await strike()
        readies = await asyncio.gather(*(instance.ready() for instance in self.instances))
        self.faults.append((name, started, ended, max(readies)))

    async def kill_one(self):
        victim = self.instances[1]
        victim.kill()
        ended = time.time()
        await victim.start()
        return ended

    async def restart_redis(self):
        self.redis.stop()
        await self.redis.start()
        return time.time()

    async def cut_database(self):
        await self.proxy.cut(5)
        return time.time()

    async def run(self):
        await self.set_up()
        sampler = asyncio.create_task(self.sample())
        journal = os.path.join(self.folder, "journal.jsonl")
        seconds = self.args.seconds
        locust = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "locust", "-f", os.path.join(HERE, "locustfile.py"), "--headless",
            "--users", str(self.args.users), "--spawn-rate", str(max(1, self.args.users // 5)),
            "--run-time", f"{seconds}s", "--stop-timeout", "10", "--only-summary", "--exit-code-on-error", "0",
            env={**os.environ, "SOAK_HOSTS": ",".join(i.base for i in self.instances), "SOAK_JOURNAL": journal,
                 "SOAK_ORIGIN": self.origin, "SOAK_RP_ID": "localhost", "SOAK_CLIENT_ID": self.client["client_id"],
                 "SOAK_CLIENT_SECRET": self.client["client_secret"], "SOAK_REDIRECT_URI": REDIRECT_URI},
            stdout=open(os.path.join(self.folder, "locust.log"), "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
        self.load_started = time.time()
        faults = asyncio.gather(
            self.fault("kill -9 the second instance, then start it again", self.load_started + 0.15 * seconds,
                       self.kill_one),
            self.fault("restart Redis", self.load_started + 0.40 * seconds, self.restart_redis),
            self.fault("cut PostgreSQL off for 5 s", self.load_started + 0.65 * seconds, self.cut_database))
        await faults
        await locust.wait()
        # Locust then stops its users (a TOTP user may be waiting for the next 30-second step).
        self.load_ended = min(time.time(), self.load_started + seconds)
        sampler.cancel()
        if locust.returncode != 0:
            print(open(os.path.join(self.folder, "locust.log")).read()[-3000:])
            raise SystemExit(f"soak: locust exited with {locust.returncode}")
        outcome = await asyncio.to_thread(self.check, [json.loads(line) for line in open(journal)])
        self.proxy.close()
        await asyncio.sleep(0.2)  # the proxy's connections end
        return outcome

    def excused(self, entry):
        """A fault excuses the answers to requests in flight during it or SETTLE seconds after."""
        for name, started, ended, _ in self.faults:
            if during(entry, started, ended):
                if entry["status"] == 0:
                    return name.startswith("kill") and entry.get("host") == 1 or entry["name"].startswith("WS")
                return (entry["status"] == 503 and entry["retry_after"]) or entry["status"] == 429 \
                    or entry["name"] == "WS message"
        return False

    def check(self, journal):
        answers = [e for e in journal if "name" in e]
        signups = [e for e in journal if e.get("kind") == "signup"]
        failures, lines = [], []

        # Answers.
        unexpected = [e for e in answers if not e["expected"] and not self.excused(e)]
        server_errors = [e for e in answers if e["status"] >= 500 and not (e["status"] == 503 and e["retry_after"])
                         and e["name"] != "WS message"]
        refused = [e for e in journal if e.get("kind") == "refresh_refused"]
        by_status = {}
        for e in answers:
            by_status[e["status"]] = by_status.get(e["status"], 0) + 1
        lines.append(f"- {len(answers):,} answers in {self.load_ended - self.load_started:.0f} s "
                     f"({len(answers) / (self.load_ended - self.load_started):.0f}/s); by status: "
                     + ", ".join(f"{'no answer' if s == 0 else s}: {n:,}" for s, n in sorted(by_status.items())))
        done = {}
        for e in answers:
            if e["expected"]:
                done[e["name"]] = done.get(e["name"], 0) + 1
        lines.append("- the mix, answered as expected: " + ", ".join(
            f"{name} {n:,}" for name, n in sorted(done.items(), key=lambda kv: -kv[1])))
        if server_errors:
            failures.append(f"{len(server_errors)} answers were a 5xx other than 503 with Retry-After: "
                            + summary(server_errors))
        if unexpected:
            failures.append(f"{len(unexpected)} answers no fault excuses: " + summary(unexpected))
        if refused:
            failures.append(f"{len(refused)} refreshes that followed the protocol were refused: "
                            + ", ".join(f"{e['status']}" for e in refused[:10]))

        # Signups and their welcome emails.
        created = {e["email"] for e in signups if e["status"] == 201}
        unknown = {e["email"] for e in signups if e["status"] == 0} - created
        counts = dict(line.split("|") for line in self.psql(
            self.direct_url, "select email, count(*) from users where email like 'soak-%' group by email").split())
        counts = {email: int(n) for email, n in counts.items()}
        welcome = self.welcome_emails(created | {e for e in unknown if e in counts})
        missing_rows = [e for e in created if counts.get(e) != 1]
        missing_mail = [e for e in created | {e for e in unknown if e in counts} if welcome.get(e, 0) == 0]
        duplicates = sum(n - 1 for n in welcome.values() if n > 1)
        lines.append(f"- signups answered 201: {len(created):,}; each exists once: "
                     f"{len(created) - len(missing_rows):,}; without an answer: {len(unknown)} "
                     f"(of which made: {sum(e in counts for e in unknown)}); welcome emails delivered: "
                     f"{sum(1 for e in welcome if welcome[e])}, duplicates: {duplicates}")
        if missing_rows:
            failures.append(f"{len(missing_rows)} signups answered 201 are not exactly one row: {missing_rows[:5]}")
        if missing_mail:
            failures.append(f"{len(missing_mail)} accounts got no welcome email: {missing_mail[:5]}")

        # Memory, pools, descriptors.
        failures += self.resources(lines)

        # Latency in calm phases and recovery.
        calm = sorted(e["ms"] for e in answers if e["name"] == "GET /users/me" and e["status"] == 200
                      and not any(during(e, started, ended) for _, started, ended, _ in self.faults))
        if calm:
            lines.append(f"- GET /users/me outside the faults: n = {len(calm):,}, p50 {percentile(calm, 50):.1f} ms, "
                         f"p99 {percentile(calm, 99):.1f} ms")
        chat = sorted(e["ms"] for e in answers if e["name"] == "WS message" and e["status"] == 200)
        if chat:
            lines.append(f"- a chat message to its broadcast back (through Redis): n = {len(chat):,}, "
                         f"p50 {percentile(chat, 50):.1f} ms, p99 {percentile(chat, 99):.1f} ms")
        lines += ["", "| fault | lasted s | every instance ready after s | errors stopped after s |",
                  "| --- | ---: | ---: | ---: |"]
        for name, started, ended, ready in self.faults:
            errors = [e["t"] + e["ms"] / 1000 for e in answers
                      if not e["expected"] and self.excused(e) and during(e, started, ended)]
            last = f"{max(errors) - started:.1f}" if errors else "none"
            lines.append(f"| {name} | {ended - started:.1f} | {ready - started:.1f} | {last} |")
        return failures, lines

    def welcome_emails(self, addresses, deadline=60):
        """How many welcome emails reached each address, waiting for the outbox to drain."""
        stop = time.time() + deadline
        while True:
            counts = {}
            for message in mailbox.Maildir(self.mail, create=False):
                if str(message.get("Subject", "")).startswith("Welcome"):
                    to = str(message.get("To", "")).strip().strip("<>").lower()
                    counts[to] = counts.get(to, 0) + 1
            if all(counts.get(a) for a in addresses) or time.time() > stop:
                return counts
            time.sleep(1)

    def resources(self, lines):
        failures = []
        window = min(60.0, self.args.seconds / 6)
        for index, instance in enumerate(self.instances):
            for pid, born, baseline in instance.lives:
                own = [(t, s) for t, i, p, s in self.samples if p == pid and s and t <= self.load_ended]
                life_start = max(born, self.load_started)
                life_end = min(self.load_ended, own[-1][0]) if own else life_start
                if life_end - life_start < 3 * window:
                    lines.append(f"- instance {index} (pid {pid}): lived {life_end - life_start:.0f} s "
                                 "under load, too short to compare windows")
                    continue
                second = [s[0] for t, s in own if life_start + window <= t < life_start + 2 * window]
                last = [s[0] for t, s in own if life_end - window <= t]
                growth = statistics.mean(last) / statistics.mean(second) - 1
                lines.append(f"- instance {index} (pid {pid}): RSS {statistics.mean(second):.1f} MiB in its second "
                             f"window, {statistics.mean(last):.1f} MiB in the last ({growth * 100:+.1f} %), "
                             f"peak {max(s[0] for _, s in own):.1f} MiB")
                if abs(growth) > 0.10:
                    failures.append(f"instance {index}'s RSS moved {growth * 100:+.1f} % between windows")
        time.sleep(SETTLE)  # sockets of the load close, the pools' connections go back
        for index, instance in enumerate(self.instances):
            # Before the load: the first life's, taken once its pool had opened.
            pid, baseline = instance.lives[-1][0], instance.lives[0][2]
            now = proc(pid)
            in_use = lowest(instance.base, "shelter_db_pool_in_use")
            sockets = lowest(instance.base, "shelter_ws_connections")
            lines.append(f"- instance {index} after the load: {now[1]} file descriptors ({now[2]} sockets), "
                         f"{now[3]} threads; before it: {baseline[1]} ({baseline[2]}), {baseline[3]}; "
                         f"pool connections in use: {in_use:.0f}, WebSockets open: {sockets:.0f} (lowest of a few samples); "
                         f"TCP by peer port: {peers(pid)}")
            # The pool holds up to POOL connections that may have closed and reopened, and
            # the shared connections open at the first signed-in reads.
            if now[1] > baseline[1] + POOL + SHARED or now[3] > baseline[3] + 2:
                failures.append(f"instance {index} holds more than before the load: {now} against {baseline}")
            if in_use or sockets:
                failures.append(f"instance {index} still has {in_use} pool connections in use and {sockets} sockets")
        connections = int(self.psql(self.admin_url, "select count(*) from pg_stat_activity where datname = "
                                                    f"'{self.database}'"))
        lines.append(f"- PostgreSQL connections to the database after the load: {connections} "
                     f"(pools of {POOL} and {SHARED} shared × {len(self.instances)})")
        if connections > (POOL + SHARED) * len(self.instances):
            failures.append(f"{connections} database connections, more than the pools and shared ones hold")
        return failures

    def tear_down(self):
        for instance in self.instances:
            instance.stop()
        self.redis.stop()
        self.smtp.terminate()
        subprocess.run(["psql", self.admin_url, "-qc", f"drop database if exists {self.database} with (force)"],
                       capture_output=True)


def during(entry, started, ended):
    """Whether the request was in flight during the fault or in the SETTLE seconds after it."""
    return started <= entry["t"] + entry["ms"] / 1000 and entry["t"] <= ended + SETTLE


def summary(entries):
    kinds = {}
    for e in entries:
        key = f"{e['name']} → {e['status'] or 'no answer'}"
        kinds[key] = kinds.get(key, 0) + 1
    return "; ".join(f"{k} ×{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:12])


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--report", help="also write the report (Markdown) to this file")
    parser.add_argument("--benchmarks", action="store_true",
                        help="also put the report in BENCHMARKS.md, in place of the last one")
    args = parser.parse_args()
    soak = Soak(args)
    try:
        failures, lines = asyncio.run(soak.run())
    finally:
        soak.tear_down()
    report = [f"Soak: {args.seconds} s, {args.users} Locust users, two release instances, "
              f"PostgreSQL through a cuttable proxy, Redis; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
              "", *lines, "", "Checks: " + ("all passed." if not failures else "FAILED"), *[f"- {f}" for f in failures]]
    print("\n".join(report))
    print(f"soak: journal and logs in {soak.folder}")
    if args.report:
        with open(args.report, "w") as out:
            out.write("\n".join(report) + "\n")
    if args.benchmarks:
        keep_section("soak", "\n".join(["## Soak under faults (`just soak`)", "", *report]))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
