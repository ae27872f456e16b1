// An independent relying party: panva's openid-client (certified by the OpenID Foundation)
// drives Shelter's provider through every flow the contract names. The browser's part
// (signing in, consenting) is plain HTTP with a cookie jar; everything else is the
// library's. Prints one JSON line per flow and exits non-zero on the first failure.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, MACHINE_ID, MACHINE_SECRET, USERNAME,
// PASSWORD, REDIRECT_URI, POST_LOGOUT_URI.

import * as client from 'openid-client';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const issuer = new URL(env('ISSUER'));
const redirectUri = env('REDIRECT_URI');
const postLogoutUri = env('POST_LOGOUT_URI');
const insecure = { execute: [client.allowInsecureRequests] };

function report(flow, detail = {}) {
  console.log(JSON.stringify({ flow, ok: true, ...detail }));
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** A browser without a browser: keeps cookies, follows no redirect. */
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers ?? {});
  headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const [name, value] = pair.split('=');
    if (value) jar.set(name, value); else jar.delete(name);
  }
  return response;
}

const field = (html, name) => {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return match && match[1].replaceAll('&amp;', '&').replaceAll('&quot;', '"');
};

async function signIn() {
  const page = await (await browse(new URL('/login', issuer))).text();
  const form = new URLSearchParams({
    csrf: field(page, 'csrf'),
    username: env('USERNAME'),
    password: env('PASSWORD'),
  });
  const response = await browse(new URL('/login', issuer), { method: 'POST', body: form });
  assert(response.status === 303, `sign-in answered ${response.status}`);
}

/** Authorize → consent when asked → the callback URL with the code. */
async function authorize(config, checks) {
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
    code_challenge_method: 'S256',
    nonce: checks.expectedNonce,
    state: checks.expectedState,
  });
  let response = await browse(url);
  if (response.status === 200) {
    const page = await response.text();
    assert(page.includes('name="decision" value="allow"'), 'a consent page');
    const form = new URLSearchParams();
    for (const [, name, value] of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
      form.append(name, value.replaceAll('&amp;', '&').replaceAll('&quot;', '"'));
    }
    form.append('decision', 'allow');
    response = await browse(new URL('/oauth/consent', issuer), { method: 'POST', body: form });
  }
  assert(response.status === 303, `authorize answered ${response.status}`);
  return new URL(response.headers.get('location'));
}

function newChecks() {
  return {
    pkceCodeVerifier: client.randomPKCECodeVerifier(),
    expectedNonce: client.randomNonce(),
    expectedState: client.randomState(),
    idTokenExpected: true,
  };
}

async function expectRefused(promise, error, what) {
  try {
    await promise;
  } catch (caught) {
    // An error answer, or a WWW-Authenticate challenge naming the error (RFC 6750).
    const challenged = Array.isArray(caught.cause)
      && caught.cause.some((challenge) => challenge.parameters?.error === error);
    assert(caught.error === error || caught.cause?.error === error || challenged,
      `${what}: expected ${error}, got ${caught.error ?? caught.code ?? caught.message}`);
    return;
  }
  throw new Error(`${what}: expected ${error}, got success`);
}

const config = await client.discovery(
  issuer, env('CLIENT_ID'), undefined, client.ClientSecretBasic(env('CLIENT_SECRET')), insecure,
);
assert(config.serverMetadata().issuer === issuer.href.replace(/\/$/, ''), 'issuer exact');
report('discovery', { issuer: config.serverMetadata().issuer });

await signIn();
let checks = newChecks();
const tokens = await client.authorizationCodeGrant(config, await authorize(config, checks), checks);
const claims = tokens.claims();
assert(claims && claims.sub, 'an ID token with sub');
report('authorization_code+pkce', { sub: claims.sub, amr: claims.amr });

const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
assert(info.email && info.preferred_username, 'email and profile claims');
report('userinfo', { email: info.email });

const introspected = await client.tokenIntrospection(config, tokens.access_token);
assert(introspected.active === true && introspected.sub === claims.sub, 'an active token');
report('introspection');

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
assert(refreshed.access_token && refreshed.refresh_token !== tokens.refresh_token, 'a new pair');
report('refresh_token');

await client.tokenRevocation(config, refreshed.refresh_token);
await expectRefused(client.refreshTokenGrant(config, refreshed.refresh_token), 'invalid_grant', 'a revoked refresh token');
report('revocation');

const machine = await client.discovery(
  issuer, env('MACHINE_ID'), undefined, client.ClientSecretPost(env('MACHINE_SECRET')), insecure,
);
const own = await client.clientCredentialsGrant(machine);
assert(own.access_token && !own.refresh_token, 'a client token and no refresh token');
const ownIntrospected = await client.tokenIntrospection(machine, own.access_token);
assert(ownIntrospected.sub === env('MACHINE_ID'), 'sub is the client');
report('client_credentials');

checks = newChecks();
const second = await client.authorizationCodeGrant(config, await authorize(config, checks), checks);
const logout = client.buildEndSessionUrl(config, {
  id_token_hint: second.id_token,
  post_logout_redirect_uri: postLogoutUri,
  state: 'bye',
});
const ended = await browse(logout);
assert(ended.status === 303, `logout answered ${ended.status}`);
assert(ended.headers.get('location') === `${postLogoutUri}?state=bye`, `back to ${ended.headers.get('location')}`);
await expectRefused(client.fetchUserInfo(config, second.access_token, claims.sub), 'invalid_token', 'userinfo after logout');
report('rp_initiated_logout');
