// An independent OpenID Connect provider for Shelter to sign in with in CI: panva's
// oidc-provider (OpenID Certified), with its development sign-in pages. Any login name
// signs in; the account's email is `{login}@example.com`, verified when the login starts
// with "verified".
//
// node op.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI[,REDIRECT_URI…]   (prints "ready")

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUris] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.com`,
          email_verified: id.startsWith('verified'),
          preferred_username: id,
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  // Test-only: signs this provider's own cookies.
  cookies: { keys: ['shelter-ci-upstream-only'] },
});

provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));
