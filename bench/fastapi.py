"""Shelter beside the FastAPI full-stack template it started from, in one run: the same
PostgreSQL, the same 10,000 seeded users, the same wrk load, each scenario on one and then
the other. Writes the "fastapi" section of BENCHMARKS.md.

The template is not ours and is not installed by anything here. To run it:

    git clone https://github.com/fastapi/full-stack-fastapi-template /tmp/fa
    python3 -m venv /tmp/fa/venv
    /tmp/fa/venv/bin/pip install "fastapi[standard]" python-multipart email-validator \
        tenacity emails jinja2 alembic httpx "psycopg[binary]" sqlmodel pydantic-settings \
        "sentry-sdk[fastapi]" pyjwt "pwdlib[argon2,bcrypt]"
    python3 bench/fastapi.py /tmp/fa/backend /tmp/fa/venv/bin/python

The template asks for Python 3.14. On an older Python two of its lines need the older
spelling first: the forward reference in app/models.py quoted (`items: list["Item"]`),
and the two exceptions caught in app/api/deps.py parenthesised.
"""

import os
import secrets
import subprocess
import sys
import time

import bench

SCENARIOS = [
    # (name, Shelter's path, the template's path, connections, who)
    ("GET /users/me", "/users/me", "/api/v1/users/me", 32, "user"),
    ("GET /users?limit=100", "/users?limit=100", "/api/v1/users/?limit=100", 32, "admin"),
    ("POST /auth/token (password login)", "/auth/token", "/api/v1/login/access-token", 8, None),
]


class Template:
    """The template's backend under uvicorn, one worker, as its Dockerfile runs it per process."""

    def __init__(self, backend_dir, python, database_url):
        self.port = bench.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=backend_dir, SECRET_KEY=secrets.token_hex(32),
                   PROJECT_NAME="bench", DATABASE_URL=database_url,
                   FIRST_SUPERUSER="root@example.com", FIRST_SUPERUSER_PASSWORD=bench.PASSWORD)
        # Where its Dockerfile puts the built web frontend, which the API does not use;
        # the app refuses to start without the directory.
        frontend = os.path.join(backend_dir, "app", "frontend")
        if not os.path.isdir(frontend):
            os.makedirs(frontend)
            with open(os.path.join(frontend, "index.html"), "w") as index:
                index.write("<!doctype html><title>frontend not built</title>\n")
        for step in (["-m", "alembic", "upgrade", "head"], ["app/initial_data.py"]):
            subprocess.run([python, *step], cwd=backend_dir, env=env, check=True, capture_output=True)
        self.process = bench.serve(
            [python, "-m", "uvicorn", "app.main:app", "--workers", "1", "--port", str(self.port),
             "--log-level", "warning"], f"{self.base}/api/v1/utils/health-check/",
            "the FastAPI template", tries=300, cwd=backend_dir, env=env)

    rss_mib = bench.Server.rss_mib
    cpu_seconds = bench.Server.cpu_seconds

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def template_seed(database_url):
    """The same 10,000 users as bench.seed, sharing the bench user's password hash."""
    sql = ("INSERT INTO \"user\" (id, email, is_active, is_superuser, full_name, hashed_password, created_at) "
           "SELECT gen_random_uuid(), 'seed' || n || '@example.com', true, false, 'seed ' || n, "
           f"hashed_password, now() FROM \"user\", generate_series(1, {bench.SEED_USERS}) AS n "
           "WHERE email = 'bench@example.com'")
    subprocess.run(["psql", "-q", database_url, "-c", sql], check=True)
    subprocess.run(["psql", "-q", database_url, "-c", 'VACUUM ANALYZE "user"'], check=True)


def token(base, path, username):
    tokens, _ = bench.call("POST", f"{base}{path}", {"username": username, "password": bench.PASSWORD},
                           form=True)
    return tokens["access_token"]


def main():
    backend_dir, python = sys.argv[1], sys.argv[2]
    names = [f"shelter_vs_{os.getpid()}_{side}" for side in ("shelter", "template")]
    urls = [bench.ADMIN_URL.rsplit("/", 1)[0] + f"/{name}" for name in names]
    for name in names:
        subprocess.run(["psql", "-q", bench.ADMIN_URL, "-c", f"CREATE DATABASE {name}"], check=True)
    started = time.monotonic()
    with bench.one_scheduling_group() as scheduling:
        try:
            shelter = bench.Server("postgres", urls[0], secrets.token_hex(32),
                                   first_superuser_email="root@example.com",
                                   first_superuser_username="root", first_superuser_password=bench.PASSWORD)
            bench.account(shelter, "bench")
            bench.seed("postgres", urls[0], None)
            template = Template(backend_dir, python, urls[1])
            bench.call("POST", f"{template.base}/api/v1/users/signup",
                       {"email": "bench@example.com", "password": bench.PASSWORD, "full_name": "bench"})
            template_seed(urls[1])
            sides = {
                "Shelter": (shelter, "/auth/token", {"user": token(shelter.base, "/auth/token", "bench"),
                                                    "admin": token(shelter.base, "/auth/token", "root")}, "bench"),
                "template": (template, "/api/v1/login/access-token",
                             {"user": token(template.base, "/api/v1/login/access-token", "bench@example.com"),
                              "admin": token(template.base, "/api/v1/login/access-token", "root@example.com")},
                             "bench@example.com"),
            }
            time.sleep(3)  # Shelter's hashing threads give their memory back after 2 idle seconds
            for scenario, ours, theirs, connections, who in SCENARIOS:
                for side, (server, _, tokens, login) in sides.items():
                    path = ours if side == "Shelter" else theirs
                    if who:
                        run = (lambda url=f"{server.base}{path}", header=f"Authorization: Bearer {tokens[who]}":
                               bench.wrk(url, connections=connections, headers=[header]))
                    else:
                        run = (lambda url=f"{server.base}{path}", user=login:
                               bench.wrk(url, connections=connections, script="login.lua",
                                         env={"BENCH_USER": user, "BENCH_PASSWORD": bench.PASSWORD}))
                    bench.measured(server, side, scenario, run)
            shelter.stop()
            template.stop()
        finally:
            for name in names:
                subprocess.run(["psql", "-q", bench.ADMIN_URL, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
    version = subprocess.run([python, "--version"], capture_output=True, text=True).stdout.strip()
    write(time.monotonic() - started, version, scheduling)


def write(elapsed, python, scheduling):
    figures = {(side, scenario): f for side, scenario, f in bench.rows}
    lines = [
        "## Beside the FastAPI template",
        "",
        f"Written by `python3 bench/fastapi.py` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{elapsed / 60:.1f} min: Shelter (release, PostgreSQL, its defaults) and "
        f"fastapi/full-stack-fastapi-template's backend (uvicorn, one worker, its defaults, {python}) on the "
        f"same PostgreSQL, {bench.SEED_USERS:,} seeded users each, wrk for {bench.SECONDS} s a "
        f"scenario, one side and then the other; {scheduling}. Logins hash with each side's own argon2id "
        "parameters: Shelter 19 MiB, 2 passes, 1 lane; the template (argon2-cffi's defaults) "
        "64 MiB, 3 passes, 4 lanes.",
        "",
        "| scenario | connections | Shelter req/s | p99 ms | RSS MiB | template req/s | p99 ms | RSS MiB | Shelter ÷ template |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, _, _, connections, _ in SCENARIOS:
        ours, theirs = figures[("Shelter", scenario)], figures[("template", scenario)]
        errors = f" ({theirs['errors']} errors)" if theirs["errors"] else ""
        lines.append(f"| {scenario} | {connections} | {ours['rps']:,.0f} | {ours['p99']:.1f} | {ours['rss']:.0f} | "
                     f"{theirs['rps']:,.1f}{errors} | {theirs['p99']:.0f} | {theirs['rss']:.0f} | "
                     f"{ours['rps'] / theirs['rps']:,.0f}× |")
    text = "\n".join(lines)
    print(text)
    bench.keep_section("fastapi", text)


if __name__ == "__main__":
    main()
