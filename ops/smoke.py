"""The journey of one person across the two instances of ops/cluster.sh: sign up on one,
read the email the SMTP catcher caught, verify, log in on the other, and chat across both.
Exits non-zero, saying which step failed, on any failure.

Usage: python ops/smoke.py [FIRST_URL SECOND_URL MAIL_DIR]
"""

import asyncio
import json
import mailbox
import re
import sys
import time
import uuid

import requests
import websockets

first, second, mail_dir = (sys.argv[1:4] if len(sys.argv) > 3 else
                           ("http://127.0.0.1:8101", "http://127.0.0.1:8102", "/tmp/shelter-cluster/mail"))


def step(name, response, status):
    if response.status_code != status:
        sys.exit(f"smoke: {name}: expected {status}, got {response.status_code}: {response.text}")
    print(f"smoke: {name}: {status}")
    return response.json() if response.content else None


def person():
    tag = uuid.uuid4().hex[:10]
    return {"email": f"smoke-{tag}@example.com", "username": f"smoke{tag}", "password": f"pw-{tag}-long"}


def token_in_mail(address, deadline=20.0):
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        for message in mailbox.Maildir(mail_dir, create=False):
            if address in message.get("To", ""):
                text = "".join(part.get_payload(decode=True).decode() for part in message.walk()
                               if part.get_content_type() == "text/plain")
                found = re.search(r"Token: (\S+)", text)
                if found:
                    return found.group(1)
        time.sleep(0.2)
    sys.exit(f"smoke: no email with a token reached {address} within {deadline}s")


def log_in(base, who):
    body = step(f"log in on {base}", requests.post(f"{base}/auth/token", data={
        "username": who["username"], "password": who["password"]}, timeout=10), 200)
    return body["access_token"]


async def chat(ann_id, ann_token, bob_id, bob_token):
    ws = lambda base, id, token: base.replace("http", "ws", 1) + f"/ws/{id}?token={token}"
    async with websockets.connect(ws(first, ann_id, ann_token)) as ann, \
            websockets.connect(ws(second, bob_id, bob_token)) as bob:
        # The instances' subscriptions may still be starting: say it until it crosses.
        for attempt in range(50):
            await ann.send(json.dumps({"content": f"hello {attempt}"}))
            try:
                while True:
                    heard = await asyncio.wait_for(bob.recv(), timeout=0.2)
                    if heard.startswith(f"Client #{ann_id} says: hello"):
                        print(f"smoke: chat crossed instances: {heard!r}")
                        return
            except asyncio.TimeoutError:
                continue
    sys.exit("smoke: a message said on the first instance never reached the second")


def main():
    ann = person()
    created = step("sign up on the first instance", requests.post(f"{first}/users", json=ann, timeout=10), 201)
    token = token_in_mail(ann["email"])
    print("smoke: the welcome email arrived with its token")
    step("verify the email", requests.post(f"{first}/auth/verify-email", json={"token": token}, timeout=10), 200)
    access = log_in(second, ann)
    me = step("read the account on the second instance",
              requests.get(f"{second}/users/me", headers={"Authorization": f"Bearer {access}"}, timeout=10), 200)
    if not me.get("email_verified"):
        sys.exit(f"smoke: the second instance does not see the verification: {me}")
    bob = person()
    bob_created = step("sign up a second person on the second instance",
                       requests.post(f"{second}/users", json=bob, timeout=10), 201)
    asyncio.run(chat(created["id"], access, bob_created["id"], log_in(second, bob)))
    print("smoke: ok")


main()
