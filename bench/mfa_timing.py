"""What a TOTP login costs over a password login, on a running release Shelter: the median
of N logins of each kind (the second step with a TOTP code of a fresh step is not repeatable
within 30 s, so the TOTP logins use recovery codes, which cost the same store round trip).

Usage: python3 bench/mfa_timing.py BASE_URL   (the server needs SHELTER_RATE_LIMIT_ENABLED=false)
"""

import json
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

BASE = sys.argv[1].rstrip("/")


def call(method, path, body=None, token=None, form=False):
    data, headers = None, {}
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(BASE + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def user():
    name = "t" + uuid.uuid4().hex[:10]
    account = {"email": f"{name}@example.com", "username": name, "password": "timing-password"}
    status, _ = call("POST", "/users", account)
    assert status == 201, status
    return account


def login(account):
    started = time.perf_counter()
    status, answer = call("POST", "/auth/token", {"username": account["username"], "password": account["password"]}, form=True)
    return status, answer, time.perf_counter() - started


def main():
    plain, totp = user(), user()
    _, answer, _ = login(totp)
    token = answer["access_token"]
    status, enrolment = call("POST", "/users/me/mfa/totp", {"current_password": totp["password"]}, token)
    assert status == 200, enrolment
    code = totp_code(enrolment["secret"])
    status, codes = call("POST", "/users/me/mfa/totp/confirm", {"code": code}, token)
    assert status == 200, codes
    password_logins, totp_logins = [], []
    for recovery in codes["recovery_codes"]:
        status, _, seconds = login(plain)
        assert status == 200, status
        password_logins.append(seconds)
        status, challenge, first = login(totp)
        assert status == 403 and challenge["code"] == "mfa_required", challenge
        started = time.perf_counter()
        status, _ = call("POST", "/auth/mfa", {"mfa_token": challenge["mfa_token"], "code": recovery})
        assert status == 200, status
        totp_logins.append(first + time.perf_counter() - started)
    password, with_totp = statistics.median(password_logins), statistics.median(totp_logins)
    print(f"password login: median {password * 1000:.1f} ms; TOTP login (both steps): median "
          f"{with_totp * 1000:.1f} ms; the second step adds {(with_totp - password) * 1000:.1f} ms "
          f"({len(password_logins)} of each)")


def totp_code(secret):
    """RFC 6238 (SHA-1, 6 digits, 30 s) from the standard library."""
    import base64, hashlib, hmac, struct
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = struct.pack(">Q", int(time.time()) // 30)
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


if __name__ == "__main__":
    main()
