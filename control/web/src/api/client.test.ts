import { describe, expect, it } from 'vitest'
import { createApi, csrfMiddleware, sessionEndMiddleware, unwrap } from './client.ts'
import { ApiError } from './problem.ts'

type OnRequest = (arg: { request: Request }) => Request
type OnResponse = (arg: { request: Request; response: Response }) => Response

describe('csrfMiddleware', () => {
  const onRequest = csrfMiddleware(() => 'token-123').onRequest as unknown as OnRequest
  it('adds the token to unsafe methods', () => {
    for (const method of ['POST', 'PATCH', 'PUT', 'DELETE']) {
      const request = onRequest({ request: new Request('https://k.test/api/v1/x', { method }) })
      expect(request.headers.get('X-CSRF-Token'), method).toBe('token-123')
    }
  })
  it('never sends it on safe methods', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS']) {
      const request = onRequest({ request: new Request('https://k.test/api/v1/x', { method }) })
      expect(request.headers.has('X-CSRF-Token'), method).toBe(false)
    }
  })
  it('sends nothing before there is a session', () => {
    const none = csrfMiddleware(() => null).onRequest as unknown as OnRequest
    expect(none({ request: new Request('https://k.test/', { method: 'POST' }) }).headers.has('X-CSRF-Token')).toBe(false)
  })
})

describe('sessionEndMiddleware', () => {
  const run = (path: string, status: number) => {
    let ended = 0
    const onResponse = sessionEndMiddleware(() => (ended += 1)).onResponse as unknown as OnResponse
    onResponse({ request: new Request(`https://k.test${path}`), response: new Response(null, { status }) })
    return ended
  }
  it('reports a 401 on ordinary calls', () => {
    expect(run('/api/v1/orgs', 401)).toBe(1)
  })
  it('ignores a wrong password and other statuses', () => {
    expect(run('/api/v1/auth/login', 401)).toBe(0)
    expect(run('/api/v1/me/password', 401)).toBe(0)
    expect(run('/api/v1/orgs', 403)).toBe(0)
  })
})

describe('unwrap and the client', () => {
  const fake = (response: Response) => async () => response
  it('returns data and throws problems as ApiError', async () => {
    const ok = createApi({ csrfToken: () => null, onSessionEnded: () => undefined }, 'https://k.test')
    const body = { type: 'urn:kokoa:problem:not-found', title: 'Not found', status: 404, detail: 'no such service' }
    const missing = unwrap(
      ok.GET('/api/v1/orgs', {
        fetch: fake(new Response(JSON.stringify(body), { status: 404, headers: { 'content-type': 'application/problem+json' } })),
      }),
    )
    await expect(missing).rejects.toMatchObject({ status: 404, slug: 'not-found', message: 'no such service' })
    const list = await unwrap(ok.GET('/api/v1/orgs', { fetch: fake(Response.json([{ id: 'o1' }])) }))
    expect(list).toEqual([{ id: 'o1' }])
  })
  it('makes a failed fetch a network ApiError', async () => {
    const api = createApi({ csrfToken: () => null, onSessionEnded: () => undefined }, 'https://k.test')
    const failing = unwrap(api.GET('/api/v1/orgs', { fetch: async () => Promise.reject(new TypeError('Failed to fetch')) }))
    await expect(failing).rejects.toBeInstanceOf(ApiError)
    await expect(failing).rejects.toMatchObject({ status: 0 })
  })
  it('sends the CSRF header on a real mutation request', async () => {
    let seen: Request | null = null
    const api = createApi({ csrfToken: () => 'abc', onSessionEnded: () => undefined }, 'https://k.test')
    await unwrap(
      api.POST('/api/v1/auth/logout', {
        fetch: async (request: Request) => {
          seen = request
          return new Response(null, { status: 204 })
        },
      }),
    )
    expect((seen as Request | null)?.headers.get('X-CSRF-Token')).toBe('abc')
  })
})
