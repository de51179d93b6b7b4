// API failures as values the UI can show: the problem+json body (RFC 9457) when the server
// sent one, a network failure otherwise. `describe` turns any thrown value into a title
// (translated by problem type) and the server's `detail`, so no failure shows as a blank.
import type { MessageKey } from '../i18n/en.ts'
import type { Problem } from './types.ts'

export const PROBLEM_PREFIX = 'urn:kokoa:problem:'

export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem | null

  constructor(status: number, problem: Problem | null, message?: string) {
    super(message ?? problem?.detail ?? `HTTP ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.problem = problem
  }

  /** The request never got an answer (offline, server down, connection reset). */
  static network(cause: unknown): ApiError {
    const text = cause instanceof Error ? cause.message : String(cause)
    return new ApiError(0, null, text)
  }

  get slug(): string | null {
    const type = this.problem?.type
    return type?.startsWith(PROBLEM_PREFIX) ? type.slice(PROBLEM_PREFIX.length) : null
  }
}

export function isProblem(body: unknown): body is Problem {
  if (typeof body !== 'object' || body === null) return false
  const b = body as Record<string, unknown>
  return typeof b.detail === 'string' && typeof b.status === 'number'
}

export interface ErrorText {
  title: string
  detail: string | null
}

export interface Lookup {
  t: (key: MessageKey) => string
  optional: (key: string, fallback: string) => string
}

export function describe(error: unknown, { t, optional }: Lookup): ErrorText {
  if (!(error instanceof ApiError)) {
    const detail = error instanceof Error ? error.message : error == null ? null : String(error)
    return { title: t('error.unexpected'), detail }
  }
  if (error.status === 0) return { title: t('error.network'), detail: null }
  const fallback = error.problem?.title ?? `${t('error.http')} ${error.status}`
  const title = error.slug ? optional(`problem.${error.slug}`, fallback) : fallback
  return { title, detail: error.problem?.detail ?? null }
}

/** Validation errors by request-body field (`loc` = ["body", field, …]), first one wins. */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError) || !error.problem?.errors) return {}
  const out: Record<string, string> = {}
  for (const item of error.problem.errors) {
    const loc = Array.isArray(item.loc) ? item.loc.map(String) : []
    const field = loc[0] === 'body' ? loc[1] : undefined
    if (field && !(field in out) && typeof item.msg === 'string') out[field] = item.msg
  }
  return out
}
