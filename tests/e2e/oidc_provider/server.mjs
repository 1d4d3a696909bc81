// A real, certified OpenID provider (npm `oidc-provider`) for the end-to-end tests.
//
// Started by tests/e2e/browser/conftest.py (fixture `oidc_provider`) on loopback; see README.md.
// Configuration comes from the environment:
//   PORT                        port on 127.0.0.1 (issuer is http://127.0.0.1:<PORT>)
//   CLIENT_ID, CLIENT_SECRET    the one confidential client (the portal)
//   REDIRECT_URIS               comma-separated redirect URIs of that client
//   POST_LOGOUT_REDIRECT_URIS   comma-separated post-logout redirect URIs (optional)
//   CLIENT_AUTH_METHOD          token endpoint auth method (default client_secret_basic)
//   ACCOUNTS_FILE               JSON list of accounts:
//     [{"login", "password", "sub", "email", "name", "groups": [...], "organization"}]
// Prints `READY <issuer>` on stdout once listening; exits cleanly on SIGTERM or SIGINT.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

import Provider from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`oidc-provider test server: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const list = (value) => (value || '').split(',').map((s) => s.trim()).filter(Boolean);

const port = Number.parseInt(required('PORT'), 10);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(readFileSync(required('ACCOUNTS_FILE'), 'utf8'));
if (!Array.isArray(accounts)) {
  console.error('oidc-provider test server: ACCOUNTS_FILE must hold a JSON list');
  process.exit(2);
}
const byLogin = new Map(accounts.map((a) => [a.login, a]));
const bySub = new Map(accounts.map((a) => [a.sub, a]));

// A fresh signing key per run: relying parties must fetch the JWKS.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `e2e-${randomBytes(6).toString('hex')}`,
  use: 'sig',
  alg: 'RS256',
};

const configuration = {
  clients: [{
    client_id: required('CLIENT_ID'),
    client_secret: required('CLIENT_SECRET'),
    redirect_uris: list(required('REDIRECT_URIS')),
    post_logout_redirect_uris: list(process.env.POST_LOGOUT_REDIRECT_URIS),
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: process.env.CLIENT_AUTH_METHOD || 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // The account id in the provider session is the account's `sub` (see the login check below).
  async findAccount(_ctx, id) {
    const account = bySub.get(id) || byLogin.get(id);
    if (!account) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        return {
          sub: account.sub,
          email: account.email,
          email_verified: true,
          name: account.name,
          groups: account.groups || [],
          organization: account.organization,
        };
      },
    };
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups', 'organization'],
  },
  // Put the scope-requested claims (groups, organization, ...) into the ID token too.
  conformIdTokenClaims: false,
  // PKCE for every client, not only public ones (S256 is the only method offered).
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
};

const provider = new Provider(issuer, configuration);

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 56 * 1024) {
      throw new Error('request entity too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// The development login form accepts any login; this checks login and password against
// ACCOUNTS_FILE first, and makes the provider's account id the account's `sub`.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (ctx.method !== 'POST' || !match || !ctx.is('application/x-www-form-urlencoded')) {
    return next();
  }
  const raw = await readBody(ctx.req);
  const form = querystring.parse(raw);
  if (form.prompt === 'login') {
    const account = byLogin.get(String(form.login || ''));
    if (!account || account.password !== String(form.password || '')) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = '<!DOCTYPE html><html lang="en"><head><title>Sign-in failed</title></head>'
        + '<body><h1>Sign-in failed</h1><p class="error">Invalid login or password.</p>'
        + `<p><a href="/interaction/${escapeHtml(match[1])}">Try again</a></p></body></html>`;
      return undefined;
    }
    form.login = account.sub;
    delete form.password;
  }
  // oidc-provider's own parser reads this when the stream was already consumed.
  ctx.req.body = querystring.stringify(form);
  return next();
});

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${issuer}\n`);
});
server.on('error', (err) => {
  console.error(`oidc-provider test server: ${err.message}`);
  process.exit(1);
});

function stop(signal) {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
  console.error(`oidc-provider test server: stopping on ${signal}`);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
