// The typed API client (openapi-fetch over the generated schema) with our session rules:
// the session cookie is HttpOnly and travels by itself; unsafe methods carry the session's
// CSRF token as X-CSRF-Token, held in memory only (never in localStorage); a 401 tells the
// app the session is gone.
import createClient, { type Client, type Middleware } from 'openapi-fetch'
import { ApiError, isProblem } from './problem.ts'
import type { paths } from './schema'

export type Api = Client<paths>
export const CSRF_HEADER = 'X-CSRF-Token'
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])
// Requests whose 401 means "wrong password", not "your session ended".
const CREDENTIAL_PATHS = ['/api/v1/auth/login', '/api/v1/auth/signup', '/api/v1/me/password']

export interface SessionHooks {
  csrfToken(): string | null
  onSessionEnded(): void
}

export function csrfMiddleware(csrfToken: () => string | null): Middleware {
  return {
    onRequest({ request }) {
      const token = csrfToken()
      if (!SAFE_METHODS.has(request.method) && token) request.headers.set(CSRF_HEADER, token)
      return request
    },
  }
}

export function sessionEndMiddleware(onSessionEnded: () => void): Middleware {
  return {
    onResponse({ request, response }) {
      const path = new URL(request.url).pathname
      if (response.status === 401 && !CREDENTIAL_PATHS.includes(path)) onSessionEnded()
      return response
    },
  }
}

export function createApi(hooks: SessionHooks, baseUrl = ''): Api {
  const api = createClient<paths>({ baseUrl, credentials: 'same-origin' })
  api.use(csrfMiddleware(hooks.csrfToken), sessionEndMiddleware(hooks.onSessionEnded))
  return api
}

interface Result<D> {
  data?: D
  error?: unknown
  response: Response
}

/** The response's data, or an ApiError carrying the problem+json the server sent. */
export async function unwrap<D>(pending: Promise<Result<D>>): Promise<D> {
  let result: Result<D>
  try {
    result = await pending
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === 'AbortError') throw cause
    throw ApiError.network(cause)
  }
  const { response, error } = result
  if (!response.ok || error !== undefined) {
    throw new ApiError(response.status, isProblem(error) ? error : null)
  }
  return result.data as D
}
