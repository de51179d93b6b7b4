// A real OpenID provider for the control plane's tests: panva's oidc-provider (certified), with
// its development login and consent forms, on 127.0.0.1 and a port of its own choosing.
//
//   REDIRECT_URIS="https://kokoa.test/api/v1/auth/oidc/test/callback" node provider.mjs
//
// prints one JSON line {"issuer": "http://127.0.0.1:PORT"} once it listens, then serves until
// it is killed (ISSUER_SLASH=1: the issuer ends in "/", as Auth0's do). One confidential
// client, `kokoa-test` / `kokoa-test-secret` (client_secret_basic), PKCE required. Any login
// name and password are accepted; the claims come from the login name (see claimsFor), so
// each test picks the user it needs by its name.

import http from 'node:http'
import Provider from 'oidc-provider'

const CLIENT_ID = process.env.CLIENT_ID ?? 'kokoa-test'
const CLIENT_SECRET = process.env.CLIENT_SECRET ?? 'kokoa-test-secret'
const redirectUris = (process.env.REDIRECT_URIS ?? '').split(/\s+/).filter(Boolean)
if (redirectUris.length === 0) {
  console.error('REDIRECT_URIS is required (space-separated)')
  process.exit(2)
}

// login "ann"                -> sub "ann", email "ann@example.com", verified, groups [kokoa-users]
// login "bob@corp.example"   -> the e-mail address is the login name
// login "ann#2"              -> another subject with ann's e-mail address ("#..." is dropped)
// login "unverified-…"       -> email_verified false
// login "noemail-…"          -> no e-mail address at all
// login "admin…"             -> groups [kokoa-admins]
export function claimsFor(sub) {
  const base = sub.split('#')[0]
  const claims = {
    sub,
    name: base,
    preferred_username: base,
    groups: base.startsWith('admin') ? ['kokoa-admins'] : ['kokoa-users'],
  }
  if (!base.startsWith('noemail')) {
    claims.email = base.includes('@') ? base : `${base}@example.com`
    claims.email_verified = !base.startsWith('unverified')
  }
  return claims
}

const configuration = {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true }, // by default only public clients must use PKCE
  features: { devInteractions: { enabled: true } },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  cookies: { keys: ['kokoa-test-provider-cookie-key'] },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => claimsFor(sub),
  }),
}

const server = http.createServer()
server.listen(0, '127.0.0.1', () => {
  const slash = process.env.ISSUER_SLASH === '1' ? '/' : ''
  const issuer = `http://127.0.0.1:${server.address().port}${slash}`
  const provider = new Provider(issuer, configuration)
  server.on('request', provider.callback())
  console.log(JSON.stringify({ issuer }))
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
