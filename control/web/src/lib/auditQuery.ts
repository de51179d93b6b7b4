// The audit log's filters, kept in the URL like the other lists, and the export link.
import { DEFAULT_LIMIT } from './listQuery.ts'

export interface AuditQuery {
  action: string
  target_type: string
  target_id: string
  actor_id: string
  since: string // YYYY-MM-DD (a date input's value), start of that day, local time
  until: string // YYYY-MM-DD, inclusive: the events of that whole day
  offset: number
}

export const AUDIT_FIELDS = ['action', 'target_type', 'target_id', 'actor_id', 'since', 'until'] as const
type Field = (typeof AUDIT_FIELDS)[number]

const TOKEN = /^[A-Za-z0-9._:*-]{1,64}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DATE = /^\d{4}-\d{2}-\d{2}$/
const VALID: Record<Field, RegExp> = {
  action: TOKEN,
  target_type: TOKEN,
  target_id: TOKEN,
  actor_id: UUID,
  since: DATE,
  until: DATE,
}

export function parseAuditQuery(search: string): AuditQuery {
  const p = new URLSearchParams(search)
  const offset = Number(p.get('offset') ?? '0')
  const out = { offset: Number.isInteger(offset) && offset > 0 ? offset : 0 } as AuditQuery
  for (const field of AUDIT_FIELDS) out[field] = (p.get(field) ?? '').trim()
  return out
}

export function formatAuditQuery(query: AuditQuery): string {
  const p = new URLSearchParams()
  for (const field of AUDIT_FIELDS) if (query[field]) p.set(field, query[field])
  if (query.offset > 0) p.set('offset', String(query.offset))
  const text = p.toString()
  return text ? `?${text}` : ''
}

/** Filters the API would refuse, by field, so the form can say so before asking. */
export function invalidAuditFields(query: AuditQuery): Field[] {
  return AUDIT_FIELDS.filter((f) => query[f] !== '' && !VALID[f].test(query[f]))
}

function dayStart(date: string, addDays = 0): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  return new Date(y, m - 1, d + addDays).toISOString()
}

export interface ApiAuditFilter {
  action?: string
  target_type?: string
  target_id?: string
  actor_id?: string
  since?: string
  until?: string
}

/** The API's query for the valid filters (dates as ISO instants; `until` includes its day). */
export function toApiAuditFilter(query: AuditQuery): ApiAuditFilter {
  const bad = new Set(invalidAuditFields(query))
  const out: ApiAuditFilter = {}
  for (const f of ['action', 'target_type', 'target_id', 'actor_id'] as const) {
    if (query[f] && !bad.has(f)) out[f] = query[f]
  }
  if (query.since && !bad.has('since')) out.since = dayStart(query.since)
  if (query.until && !bad.has('until')) out.until = dayStart(query.until, 1)
  return out
}

export function auditPageQuery(query: AuditQuery): ApiAuditFilter & { limit: number; offset: number } {
  return { ...toApiAuditFilter(query), limit: DEFAULT_LIMIT, offset: query.offset }
}

export function auditExportUrl(org: string, query: AuditQuery, format: 'csv' | 'json'): string {
  const p = new URLSearchParams(toApiAuditFilter(query) as Record<string, string>)
  p.set('format', format)
  return `/api/v1/orgs/${encodeURIComponent(org)}/audit/export?${p.toString()}`
}
