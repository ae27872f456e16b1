"""The soak's load, run by Locust (ops/soak/soak.py starts it): people who sign up, sign in
with a password, a TOTP code or a passkey, read their account, refresh, take OpenID Connect
code flows and chat, spread over the instances as a load balancer would spread them.

Every answer goes to a journal (one JSON object a line) that the soak checks afterwards;
Locust's own statistics are only printed. An answer is "expected" when it is what a working
server gives a client following the protocol; the soak decides what else a fault excuses.

Environment: SOAK_HOSTS (base URLs, comma separated), SOAK_JOURNAL (the journal's path),
SOAK_ORIGIN and SOAK_RP_ID (WebAuthn), SOAK_CLIENT_ID, SOAK_CLIENT_SECRET and
SOAK_REDIRECT_URI (a confidential OAuth client allowed the code and refresh grants).
"""

import base64
import hashlib
import json
import os
import random
import re
import struct
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import cbor2
import pyotp
import websocket
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from locust import HttpUser, between, task

HOSTS = os.environ["SOAK_HOSTS"].split(",")
JOURNAL = open(os.environ["SOAK_JOURNAL"], "a", buffering=1)  # noqa: SIM115 (open for the run)
ORIGIN, RP_ID = os.environ["SOAK_ORIGIN"], os.environ["SOAK_RP_ID"]
CLIENT = (os.environ["SOAK_CLIENT_ID"], os.environ["SOAK_CLIENT_SECRET"])
REDIRECT_URI = os.environ["SOAK_REDIRECT_URI"]
# A fault's answers are 503 with Retry-After; a client waits that long, but not forever.
LONGEST_WAIT = 2.0


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sha256(data):
    return hashlib.sha256(data).digest()


def note(**entry):
    JOURNAL.write(json.dumps(entry) + "\n")


class Passkey:
    """A platform authenticator's passkey: a P-256 key signing ES256, attestation "none",
    user present and verified. Only the client's half of WebAuthn; Shelter verifies with
    webauthn-rs."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.user_handle = None
        self.counter = 0

    def _client_data(self, kind, challenge):
        return json.dumps({"type": kind, "challenge": challenge, "origin": ORIGIN,
                           "crossOrigin": False}).encode()

    def _answer(self, response):
        return {"id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
                "response": response, "clientExtensionResults": {}}

    def create(self, options):
        self.user_handle = options["user"]["id"]
        point = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: point.x.to_bytes(32, "big"), -3: point.y.to_bytes(32, "big")})
        # Flags: user present (0x01), user verified (0x04), attested credential data (0x40).
        data = (sha256(RP_ID.encode()) + bytes([0x45]) + struct.pack(">I", 0) + bytes(16)
                + struct.pack(">H", len(self.credential_id)) + self.credential_id + cose)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        return self._answer({"clientDataJSON": b64(client_data), "attestationObject": b64(attestation),
                             "transports": ["internal"]})

    def get(self, options):
        self.counter += 1
        data = sha256(RP_ID.encode()) + bytes([0x05]) + struct.pack(">I", self.counter)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.key.sign(data + sha256(client_data), ec.ECDSA(hashes.SHA256()))
        return self._answer({"clientDataJSON": b64(client_data), "authenticatorData": b64(data),
                             "signature": b64(signature), "userHandle": self.user_handle})


class Person(HttpUser):
    """Someone with an account: signs up at start, then keeps a token pair."""

    abstract = True
    wait_time = between(0.2, 1.0)
    host = HOSTS[0]

    def on_start(self):
        self.home = random.randrange(len(HOSTS))
        # Each person has an address of their own (the instances trust the loopback proxy),
        # so the per-address rate limits see people, not the load generator.
        self.address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        self.access = self.refresh = None
        self.id, self.last_call = None, time.time()
        while not self.sign_up():
            time.sleep(0.5)

    def call(self, name, method, path, expect=(200,), token=True, **kwargs):
        """One request to this person's instance, journaled; the response, or None when no
        answer came (the instance went away: the next request goes to the other one, as
        a load balancer fails over)."""
        host = self.home
        headers = {"X-Forwarded-For": self.address, **kwargs.pop("headers", {})}
        if token and self.access:
            headers["Authorization"] = f"Bearer {self.access}"
        started = time.time()
        with self.client.request(method, HOSTS[host] + path, name=name, headers=headers, timeout=20,
                                 allow_redirects=False, catch_response=True, **kwargs) as response:
            status = response.status_code or 0
            expected = status in expect
            note(t=started, ms=(time.time() - started) * 1000, name=name, host=host, status=status,
                 retry_after="Retry-After" in response.headers, expected=expected,
                 **({"error": str(response.error)[:300], "idle": started - self.last_call} if status == 0 else {}))
            self.last_call = time.time()
            if expected:
                response.success()
            else:
                response.failure(f"{status}")
        if status == 0:
            self.home = (host + 1) % len(HOSTS)
            return None
        if status == 503:
            time.sleep(min(float(response.headers.get("Retry-After", 1)), LONGEST_WAIT))
        return response

    def sign_up(self):
        """Signs up until an answer says how it went; True when the account exists."""
        tag = uuid.uuid4().hex[:12]
        self.email, self.username, self.password = f"soak-{tag}@example.com", f"soak{tag}", f"pw-{tag}-long"
        outcome_unknown = False
        for _ in range(10):
            response = self.call("POST /users", "POST", "/users", expect=(201, 409) if outcome_unknown else (201,),
                                 token=False, json={"email": self.email, "username": self.username,
                                                    "password": self.password})
            status = response.status_code if response is not None else 0
            note(kind="signup", email=self.email, status=status, retried=outcome_unknown)
            if status == 201:
                self.id = response.json()["id"]
                return self.log_in()
            if status == 409 and outcome_unknown:
                return self.log_in()
            # No answer: the account may exist; a retry tells (201, or 409 for the first try's).
            outcome_unknown = outcome_unknown or status == 0
            if status not in (0, 429, 503):
                return False
        return False

    def take(self, response):
        pair = response.json()
        self.access, self.refresh = pair["access_token"], pair["refresh_token"]

    def log_in(self):
        response = self.call("POST /auth/token", "POST", "/auth/token", token=False,
                             data={"username": self.username, "password": self.password})
        if response is not None and response.status_code == 200:
            self.take(response)
            me = self.call("GET /users/me", "GET", "/users/me")
            if me is not None and me.status_code == 200:
                self.id = me.json()["id"]
            return True
        return False

    @task(10)
    def read_account(self):
        if self.access is None:
            self.log_in()
            return
        response = self.call("GET /users/me", "GET", "/users/me")
        if response is not None and response.status_code == 401:
            self.access = None

    @task(3)
    def refresh_tokens(self):
        """The protocol: the newest refresh token, once. An exchange that got no answer may
        have been made: the same token again at once, within the reuse grace, is still right."""
        if self.refresh is None:
            return
        for _ in range(3):
            response = self.call("POST /auth/refresh", "POST", "/auth/refresh", token=False,
                                 json={"refresh_token": self.refresh})
            if response is None or response.status_code == 503:
                continue
            if response.status_code == 200:
                self.take(response)
            else:
                note(kind="refresh_refused", status=response.status_code, user=self.username)
                self.access = self.refresh = None
            return


class PasswordPerson(Person):
    weight = 6

    @task(1)
    def log_in_again(self):
        self.log_in()


class Newcomer(Person):
    """Signs up again and again: the signups the soak checks one by one."""

    weight = 2
    wait_time = between(1, 3)

    @task(1)
    def another_signup(self):
        self.sign_up()


class TotpPerson(Person):
    """Turns on TOTP, then signs in with the password and a code; a 30-second step works
    once per user, so this person signs in at most once a step."""

    weight = 1

    def on_start(self):
        super().on_start()
        self.totp, self.used_steps = None, set()
        while self.totp is None and self.access:
            enrol = self.call("POST /users/me/mfa/totp", "POST", "/users/me/mfa/totp",
                              json={"current_password": self.password})
            if enrol is None or enrol.status_code != 200:
                time.sleep(0.5)
                continue
            totp = pyotp.TOTP(enrol.json()["secret"])
            confirmed = self.call("POST /users/me/mfa/totp/confirm", "POST", "/users/me/mfa/totp/confirm",
                                  json={"code": self.code(totp)})
            if confirmed is not None and confirmed.status_code == 200:
                self.totp = totp

    def code(self, totp):
        step = int(time.time()) // 30
        while step in self.used_steps:
            time.sleep(30 - time.time() % 30 + 0.05)
            step = int(time.time()) // 30
        self.used_steps.add(step)
        return totp.at(step * 30)

    def log_in(self):
        if getattr(self, "totp", None) is None:
            return super().log_in()
        first = self.call("POST /auth/token (TOTP)", "POST", "/auth/token", expect=(403,), token=False,
                          data={"username": self.username, "password": self.password})
        if first is None or first.status_code != 403:
            return False
        second = self.call("POST /auth/mfa", "POST", "/auth/mfa", token=False,
                           json={"mfa_token": first.json()["mfa_token"], "code": self.code(self.totp)})
        if second is not None and second.status_code == 200:
            self.take(second)
            return True
        return False

    @task(1)
    def log_in_again(self):
        self.log_in()


class PasskeyPerson(Person):
    """Adds a passkey, then signs in with it."""

    weight = 1

    def on_start(self):
        super().on_start()
        self.passkey = None
        while self.passkey is None and self.access:
            options = self.call("POST /users/me/passkeys/options", "POST", "/users/me/passkeys/options", json={})
            if options is None or options.status_code != 200:
                time.sleep(0.5)
                continue
            device, body = Passkey(), options.json()
            added = self.call("POST /users/me/passkeys", "POST", "/users/me/passkeys", expect=(201,),
                              json={"flow_token": body["flow_token"], "name": "soak",
                                    "credential": device.create(body["publicKey"])})
            if added is not None and added.status_code == 201:
                self.passkey = device

    @task(1)
    def sign_in_with_passkey(self):
        if self.passkey is None:
            return
        options = self.call("POST /auth/passkey/options", "POST", "/auth/passkey/options", token=False, json={})
        if options is None or options.status_code != 200:
            return
        body = options.json()
        response = self.call("POST /auth/passkey", "POST", "/auth/passkey", token=False,
                             json={"flow_token": body["flow_token"], "credential": self.passkey.get(body["publicKey"])})
        if response is not None and response.status_code == 200:
            self.take(response)


class ApplicationUser(Person):
    """Signs in on the hosted page, then goes through an application's code flow (PKCE,
    consent once) and refreshes the application's tokens."""

    weight = 1

    def on_start(self):
        super().on_start()
        self.signed_in_page = False
        self.app_refresh = None

    def page_sign_in(self):
        page = self.call("GET /login", "GET", "/login", token=False)
        found = page is not None and re.search(r'name="csrf" value="([^"]+)"', page.text)
        if not found:
            return
        done = self.call("POST /login", "POST", "/login", expect=(303,), token=False,
                         data={"csrf": found.group(1), "username": self.username, "password": self.password})
        self.signed_in_page = done is not None and done.status_code == 303

    @task(2)
    def code_flow(self):
        if not self.signed_in_page:
            self.page_sign_in()
            return
        verifier = b64(os.urandom(32))
        query = urlencode({"response_type": "code", "client_id": CLIENT[0], "redirect_uri": REDIRECT_URI,
                           "scope": "openid profile email", "state": uuid.uuid4().hex, "nonce": uuid.uuid4().hex,
                           "code_challenge": b64(sha256(verifier.encode())), "code_challenge_method": "S256"})
        answer = self.call("GET /oauth/authorize", "GET", f"/oauth/authorize?{query}", expect=(200, 303), token=False)
        if answer is not None and answer.status_code == 200:
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
            fields = {name: value.replace("&amp;", "&") for name, value in fields.items()}
            answer = self.call("POST /oauth/consent", "POST", "/oauth/consent", expect=(303,), token=False,
                               data={**fields, "decision": "allow"})
        if answer is None or answer.status_code != 303:
            return
        location = answer.headers["Location"]
        if not location.startswith(REDIRECT_URI):
            self.signed_in_page = False  # back to /login: the page session ended
            return
        code = parse_qs(urlsplit(location).query)["code"][0]
        tokens = self.call("POST /oauth/token (code)", "POST", "/oauth/token", token=False, auth=CLIENT,
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                                 "code_verifier": verifier})
        if tokens is not None and tokens.status_code == 200:
            self.app_refresh = tokens.json().get("refresh_token")

    @task(1)
    def refresh_application_tokens(self):
        for _ in range(3):
            if self.app_refresh is None:
                return
            tokens = self.call("POST /oauth/token (refresh)", "POST", "/oauth/token", token=False, auth=CLIENT,
                               data={"grant_type": "refresh_token", "refresh_token": self.app_refresh})
            if tokens is None or tokens.status_code == 503:
                continue
            if tokens.status_code == 200:
                self.app_refresh = tokens.json().get("refresh_token")
            else:
                note(kind="refresh_refused", status=tokens.status_code, user=self.username, oauth=True)
                self.app_refresh = None
            return


class Chatter(Person):
    """Keeps a WebSocket open and says something now and then; the broadcast of each message
    must come back to the sender (it goes through Redis to every instance)."""

    weight = 1
    wait_time = between(1, 2)

    def on_start(self):
        super().on_start()
        self.socket, self.said = None, 0

    def connect(self):
        url = HOSTS[self.home].replace("http", "ws", 1) + f"/ws/{self.id}?token={self.access}"
        try:
            self.socket = websocket.create_connection(url, timeout=5)
        except Exception:  # noqa: BLE001 (refused, reset, 503, 401: journaled as no socket)
            note(t=time.time(), ms=0, name="WS connect", host=self.home, status=0, retry_after=False,
                 expected=False)
            self.socket = None
            self.home = (self.home + 1) % len(HOSTS)
            self.log_in()

    @task(20)
    def say_something(self):
        if self.socket is None:
            if self.access is None or self.id is None:
                self.log_in()
                return
            self.connect()
            if self.socket is None:
                return
        self.said += 1
        text, started, status = f"{self.username} {self.said}", time.time(), 0
        try:
            self.socket.send(json.dumps({"content": text}))
            deadline = started + 5
            while time.time() < deadline:
                if self.socket.recv() == f"Client #{self.id} says: {text}":
                    status = 200
                    break
            else:
                status = 504
        except websocket.WebSocketTimeoutException:
            status = 504
        except Exception:  # noqa: BLE001 (the connection ended: open another next time)
            self.socket = None
        note(t=started, ms=(time.time() - started) * 1000, name="WS message", host=self.home, status=status,
             retry_after=False, expected=status == 200)
        if status == 0:
            self.home = (self.home + 1) % len(HOSTS)

    def on_stop(self):
        if self.socket is not None:
            self.socket.close()
