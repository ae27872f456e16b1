"""Login timing: a wrong password for an existing user vs an unknown user.

Usage: python3 login_timing.py BASE_URL EXISTING_LOGIN [N]
Sends N sequential logins of each kind, interleaved in a random order within each pair
(a fixed order lets position effects, such as which blocking thread's allocator serves the
19 MiB argon2 buffer, masquerade as a difference between the kinds), and prints
p50/p95/mean in ms. The two rows should match: an unknown user costs one dummy argon2
verification.
"""
import random
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def login(base, username):
    data = urllib.parse.urlencode({"username": username, "password": "definitely wrong"}).encode()
    start = time.perf_counter()
    try:
        urllib.request.urlopen(urllib.request.Request(base + "/auth/token", data=data), timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    return (time.perf_counter() - start) * 1000


def main():
    base, existing = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    known, unknown = [], []
    for i in range(n):
        if random.random() < 0.5:
            known.append(login(base, existing))
            unknown.append(login(base, f"nobody{i}@example.com"))
        else:
            unknown.append(login(base, f"nobody{i}@example.com"))
            known.append(login(base, existing))
    print("| case | n | p50 ms | p95 ms | mean ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, xs in (("existing user, wrong password", known), ("unknown user", unknown)):
        xs = sorted(xs)
        print(f"| {name} | {n} | {xs[n // 2]:.1f} | {xs[int(n * 0.95)]:.1f} | {statistics.mean(xs):.1f} |")


if __name__ == "__main__":
    main()
