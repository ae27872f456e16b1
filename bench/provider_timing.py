"""Sign-in with an upstream provider against a password sign-in, in one run.

Usage: python3 provider_timing.py BINARY [N]
  BINARY  a release build of shelter (target/release/shelter)

It starts two instances on SQLite files in a temporary folder: the upstream (a Shelter
acting as the OpenID Connect provider) and the downstream (configured with
SHELTER_PROVIDERS to sign in with it). It registers the downstream as a client of the
upstream, signs a browser in at the upstream once and allows the consent, then times N
sign-ins of each kind, interleaved:

- provider: a fresh downstream browser follows the whole round trip: the start (a 303 to
  the upstream), the upstream's authorize (signed in, consent remembered: a 303 back), and
  the downstream's callback, which redeems the code at the upstream's token endpoint
  (client authentication, an RS256 ID token and access token), checks the ID token against
  the upstream's JWKS, finds the user by (provider, sub) and starts a session. Timed whole,
  and the callback alone;
- password: `POST /auth/token` at the downstream (argon2id at OWASP's minimum).

Then 8 browsers sign in with the provider at once for 10 s: the rate, and the downstream's
RSS before, at the peak (sampled every 50 ms) and after. Both instances share the
machine's cores, as they would on one host.
"""
import http.cookiejar
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from bench import call, free_port


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))


def get(opener, url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers, answer.read().decode()


def post_form(opener, url, fields):
    return get(opener, url, urllib.parse.urlencode(fields).encode(),
               {"content-type": "application/x-www-form-urlencoded"})


def hidden(html):
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)


def start(binary, folder, name, port, extra):
    env = dict(os.environ)
    env.update({
        "SHELTER_PORT": str(port),
        "SHELTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SHELTER_DATABASE_URL": f"sqlite://{folder}/{name}.db?mode=rwc",
        "SHELTER_SECRET_KEY": "bench-only-secret-key-of-at-least-32-bytes",
        "SHELTER_RATE_LIMIT_ENABLED": "false",
        "SHELTER_FIRST_SUPERUSER_EMAIL": "admin@example.com",
        "SHELTER_FIRST_SUPERUSER_USERNAME": "admin",
        "SHELTER_FIRST_SUPERUSER_PASSWORD": "a long admin password",
        "RUST_LOG": "warn",
    })
    env.update(extra)
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not start")


LOAD_SECONDS = 10


def rss(pid):
    """The resident set of a process, KiB."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])


def row(name, xs):
    xs = sorted(xs)
    n = len(xs)
    return f"| {name} | {n} | {xs[n // 2]:.1f} | {xs[int(n * 0.95)]:.1f} | {statistics.mean(xs):.1f} |"


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    folder = tempfile.mkdtemp()
    up_port, down_port = free_port(), free_port()
    up = f"http://127.0.0.1:{up_port}"
    down = f"http://127.0.0.1:{down_port}"
    processes = [start(binary, folder, "upstream", up_port, {})]
    try:
        admin = call("POST", f"{up}/auth/token", {"username": "admin", "password": "a long admin password"},
                     form=True)[0]["access_token"]
        client = call("POST", f"{up}/oauth/clients", {
            "name": "downstream",
            "redirect_uris": [f"{down}/auth/providers/upstream/callback"],
        }, token=admin)[0]
        providers = [{
            "id": "upstream", "name": "Upstream", "issuer": up,
            "client_id": client["client_id"], "client_secret": client["client_secret"],
        }]
        processes.append(start(binary, folder, "downstream", down_port,
                               {"SHELTER_PROVIDERS": json.dumps(providers)}))
        name, password = f"bench{random.randrange(10**9)}", "a long enough password"
        call("POST", f"{up}/users", {"email": f"{name}@example.com", "username": name, "password": password})
        call("POST", f"{down}/users", {"email": f"local{name}@example.com", "username": name, "password": password})

        upstream = browser()
        _, _, page = get(upstream, f"{up}/login")
        post_form(upstream, f"{up}/login", dict(hidden(page)) | {"username": name, "password": password})

        def provider_sign_in():
            here = browser()
            begin = time.perf_counter()
            status, headers, _ = get(here, f"{down}/auth/providers/upstream/start")
            assert status == 303, status
            status, headers, page = get(upstream, headers["Location"])
            if status == 200:  # the first time: the consent page
                status, headers, page = post_form(upstream, f"{up}/oauth/consent",
                                                  dict(hidden(page)) | {"decision": "allow"})
            assert status == 303, (status, page[:300])
            callback = time.perf_counter()
            status, headers, page = get(here, headers["Location"])
            assert status == 303 and headers["Location"] == "/account", (status, page[:300])
            end = time.perf_counter()
            return (end - begin) * 1000, (end - callback) * 1000

        def password_sign_in():
            begin = time.perf_counter()
            tokens = call("POST", f"{down}/auth/token", {"username": name, "password": password}, form=True)[0]
            assert tokens["access_token"]
            return (time.perf_counter() - begin) * 1000

        provider_sign_in()  # consent, and warm-up
        for _ in range(10):
            password_sign_in()
            provider_sign_in()
        whole, callbacks, passwords = [], [], []
        for kind in random.sample(["provider"] * n + ["password"] * n, 2 * n):
            if kind == "provider":
                total, callback = provider_sign_in()
                whole.append(total)
                callbacks.append(callback)
            else:
                passwords.append(password_sign_in())
        # Under load: 8 browsers signing in with the provider for SECONDS, the downstream's
        # RSS sampled throughout.
        downstream = processes[1].pid
        time.sleep(3)  # the hashing threads give their argon2 memory back after 2 idle seconds
        idle = rss(downstream)
        peak, done, stop = [idle], [0] * 8, time.perf_counter() + LOAD_SECONDS

        def sampler():
            while time.perf_counter() < stop:
                peak.append(rss(downstream))
                time.sleep(0.05)

        def client(i):
            while time.perf_counter() < stop:
                provider_sign_in()
                done[i] += 1

        threads = [threading.Thread(target=sampler)] + [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(3)
        after = rss(downstream)
        print("| sign-in | n | p50 ms | p95 ms | mean ms |")
        print("| --- | --- | --- | --- | --- |")
        print(row("password (`POST /auth/token`)", passwords))
        print(row("provider, whole round trip (3 requests)", whole))
        print(row("provider, the callback alone", callbacks))
        print()
        print(f"8 browsers at once for {LOAD_SECONDS} s: {sum(done) / LOAD_SECONDS:.0f} provider sign-ins/s; "
              f"downstream RSS {idle / 1024:.0f} MiB before, {max(peak) / 1024:.0f} MiB at the peak, "
              f"{after / 1024:.0f} MiB 3 s after")
    finally:
        for process in processes:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
