"""Passkey sign-in against password sign-in, in one run on one server.

Usage: python3 passkey_timing.py BASE_URL ORIGIN [N] [THREADS] [SECONDS]
  BASE_URL  where the server answers (http://127.0.0.1:8000)
  ORIGIN    the origin its relying party allows (SHELTER_PUBLIC_URL=http://localhost:8000)

Needs the `fido2` package (Yubico's python-fido2) for the authenticator's side: its CBOR,
COSE key and authenticator-data types build the registration and each assertion, signed
with an ES256 key it holds, as a platform authenticator would. The server verifies with
webauthn-rs; nothing here checks anything the server should.

It signs up one user, signs in with the password, adds a passkey, then:
- N sequential sign-ins of each kind, interleaved at random (p50/p95/mean ms). A passkey
  sign-in is two requests (`POST /auth/passkey/options`, `POST /auth/passkey`), timed
  together and the finish alone; a password sign-in is one `POST /auth/token`.
- With THREADS > 0, each kind alone for SECONDS with THREADS clients in parallel: sign-ins
  a second, the ceiling argon2 sets for passwords beside what a passkey costs.
Run the server with rate limits off (SHELTER_RATE_LIMIT_ENABLED=false).
"""
import base64
import hashlib
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
)


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def call(base, path, body=None, token=None, form=None):
    headers = {}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    else:
        data = json.dumps(body or {}).encode()
        headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = "Bearer " + token
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


class Authenticator:
    """One passkey: an ES256 key, its credential id, and the user handle it keeps."""

    def __init__(self, origin):
        self.origin = origin
        self.rp_id = urllib.parse.urlsplit(origin).hostname
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.user_handle = None
        self.counter = 0
        self.lock = threading.Lock()

    def client_data(self, kind, challenge):
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def register(self, options):
        self.user_handle = options["user"]["id"]
        client_data = self.client_data("webauthn.create", options["challenge"])
        credential = AttestedCredentialData.create(
            b"\0" * 16, self.credential_id, ES256.from_cryptography_key(self.key.public_key())
        )
        flags = AuthenticatorData.FLAG
        auth_data = AuthenticatorData.create(
            hashlib.sha256(self.rp_id.encode()).digest(),
            flags.UP | flags.UV | flags.AT,
            0,
            credential,
        )
        attestation = AttestationObject.create("none", auth_data, {})
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "clientDataJSON": b64u(client_data),
                "attestationObject": b64u(bytes(attestation)),
            },
        }

    def sign(self, options):
        with self.lock:
            self.counter += 1
            counter = self.counter
        client_data = self.client_data("webauthn.get", options["challenge"])
        flags = AuthenticatorData.FLAG
        auth_data = bytes(
            AuthenticatorData.create(
                hashlib.sha256(self.rp_id.encode()).digest(), flags.UP | flags.UV, counter
            )
        )
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "clientDataJSON": b64u(client_data),
                "authenticatorData": b64u(auth_data),
                "signature": b64u(signature),
                "userHandle": self.user_handle,
            },
        }


def add_passkey(base, access, origin, name):
    device = Authenticator(origin)
    options = call(base, "/users/me/passkeys/options", token=access)
    credential = device.register(options["publicKey"])
    call(
        base,
        "/users/me/passkeys",
        {"flow_token": options["flow_token"], "name": name, "credential": credential},
        token=access,
    )
    return device


def password_sign_in(base, login, password):
    start = time.perf_counter()
    tokens = call(base, "/auth/token", form={"username": login, "password": password})
    assert tokens["access_token"]
    return (time.perf_counter() - start) * 1000, None


def passkey_sign_in(base, device):
    start = time.perf_counter()
    options = call(base, "/auth/passkey/options")
    credential = device.sign(options["publicKey"])
    finish = time.perf_counter()
    tokens = call(base, "/auth/passkey", {"flow_token": options["flow_token"], "credential": credential})
    assert tokens["access_token"]
    end = time.perf_counter()
    return (end - start) * 1000, (end - finish) * 1000


def row(name, xs):
    xs = sorted(xs)
    n = len(xs)
    return f"| {name} | {n} | {xs[n // 2]:.1f} | {xs[int(n * 0.95)]:.1f} | {statistics.mean(xs):.1f} |"


def rate(work, threads, seconds):
    """Sign-ins a second of `work(i)` from `threads` clients, client i calling `work(i)`."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def client(i):
        while time.perf_counter() < stop:
            work(i)
            done[i] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / seconds


def main():
    base, origin = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 10
    name = f"bench{random.randrange(10**9)}"
    password = "a long enough password"
    call(base, "/users", {"email": f"{name}@example.com", "username": name, "password": password})
    access = call(base, "/auth/token", form={"username": name, "password": password})["access_token"]
    # One passkey per parallel client: a device signs one sign-in at a time, and answers
    # that reached the server out of order would be counter regressions.
    devices = [add_passkey(base, access, origin, f"bench {i}") for i in range(max(threads, 1))]
    device = devices[0]
    kinds = {
        "password": lambda: password_sign_in(base, name, password),
        "passkey": lambda: passkey_sign_in(base, device),
    }
    for kind in kinds.values():  # warm both paths
        kind()
    times = {"password": [], "passkey": [], "passkey finish": []}
    for _ in range(n):
        order = list(kinds)
        random.shuffle(order)
        for kind in order:
            total, finish = kinds[kind]()
            times[kind].append(total)
            if finish is not None:
                times["passkey finish"].append(finish)
    print("| sign-in, sequential | n | p50 ms | p95 ms | mean ms |")
    print("| --- | --- | --- | --- | --- |")
    print(row("password (`POST /auth/token`, argon2id)", times["password"]))
    print(row("passkey (options + finish)", times["passkey"]))
    print(row("passkey finish alone", times["passkey finish"]))
    if threads:
        print()
        print(f"| sign-ins a second, {threads} clients, {seconds:.0f} s each | per second |")
        print("| --- | --- |")
        parallel = {
            "password": lambda i: password_sign_in(base, name, password),
            "passkey": lambda i: passkey_sign_in(base, devices[i]),
        }
        for kind, work in parallel.items():
            print(f"| {kind} | {rate(work, threads, seconds):.0f} |")


if __name__ == "__main__":
    main()
