"""Schemathesis hooks for Shelter's schema fuzzing (see .ci/fuzz-schema).

Every request carries a superuser's token. The fuzzer may, as the contract allows, rename,
deactivate, demote or delete that superuser; the token is then fetched again, and when the
superuser can no longer log in, `shelter create-superuser` makes a fresh one.
"""

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid

import schemathesis

BASE_URL = os.environ["SHELTER_FUZZ_URL"]
BINARY = os.environ["SHELTER_FUZZ_BINARY"]


def _login(login, password):
    data = urllib.parse.urlencode({"username": login, "password": password}).encode()
    request = urllib.request.Request(f"{BASE_URL}/auth/token", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["access_token"]
    except urllib.error.HTTPError:
        return None


class _Superuser:
    def __init__(self):
        self.email = os.environ["SHELTER_FIRST_SUPERUSER_EMAIL"]
        self.username = os.environ["SHELTER_FIRST_SUPERUSER_USERNAME"]
        self.password = os.environ["SHELTER_FIRST_SUPERUSER_PASSWORD"]

    def token(self):
        for login in (self.username, self.email):
            token = _login(login, self.password)
            if token:
                return token
        self._replace()
        token = _login(self.username, self.password)
        if not token:
            raise RuntimeError("a freshly created superuser cannot log in")
        return token

    def _replace(self):
        tag = uuid.uuid4().hex[:12]
        self.email = f"fuzz-admin-{tag}@example.com"
        self.username = f"fuzz_admin_{tag}"
        subprocess.run(
            [BINARY, "create-superuser", "--email", self.email, "--username", self.username],
            input=f"{self.password}\n",
            text=True,
            check=True,
            capture_output=True,
        )


_SUPERUSER = _Superuser()


@schemathesis.auth(refresh_interval=2)
class SuperuserToken:
    def get(self, case, ctx):
        return _SUPERUSER.token()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
