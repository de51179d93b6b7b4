// The state of a list page (search text, enabled filter, page) lives in the URL's query
// string, so a filtered list survives a reload and can be shared as a link.

export const DEFAULT_LIMIT = 25
export const MAX_LIMIT = 200

export type EnabledFilter = 'all' | 'enabled' | 'disabled'

export interface ListQuery {
  q: string
  enabled: EnabledFilter
  offset: number
  limit: number
}

export const EMPTY_QUERY: ListQuery = { q: '', enabled: 'all', offset: 0, limit: DEFAULT_LIMIT }

function intParam(value: string | null, fallback: number, min: number, max: number): number {
  if (value === null || !/^\d+$/.test(value)) return fallback
  return Math.min(max, Math.max(min, Number(value)))
}

export function parseListQuery(search: string): ListQuery {
  const p = new URLSearchParams(search)
  const enabled = p.get('enabled')
  return {
    q: (p.get('q') ?? '').slice(0, 100),
    enabled: enabled === 'enabled' || enabled === 'disabled' ? enabled : 'all',
    offset: intParam(p.get('offset'), 0, 0, 1_000_000),
    limit: intParam(p.get('limit'), DEFAULT_LIMIT, 1, MAX_LIMIT),
  }
}

/** The query string for `query` (defaults left out), with a leading "?" or empty. */
export function formatListQuery(query: ListQuery): string {
  const p = new URLSearchParams()
  if (query.q) p.set('q', query.q)
  if (query.enabled !== 'all') p.set('enabled', query.enabled)
  if (query.offset > 0) p.set('offset', String(query.offset))
  if (query.limit !== DEFAULT_LIMIT) p.set('limit', String(query.limit))
  const text = p.toString()
  return text ? `?${text}` : ''
}

/** A new filter starts again at the first page. */
export function withFilter(query: ListQuery, change: Partial<Pick<ListQuery, 'q' | 'enabled'>>): ListQuery {
  return { ...query, ...change, offset: 0 }
}

export interface ApiListQuery {
  q?: string
  enabled?: boolean
  limit: number
  offset: number
}

export function toApiQuery(query: ListQuery): ApiListQuery {
  const out: ApiListQuery = { limit: query.limit, offset: query.offset }
  const q = query.q.trim()
  if (q) out.q = q
  if (query.enabled !== 'all') out.enabled = query.enabled === 'enabled'
  return out
}

export interface PageInfo {
  from: number
  to: number
  total: number
  prev: number | null
  next: number | null
}

/** 1-based "from–to of total" and the offsets of the neighbouring pages (null: none). */
export function pageInfo(total: number, offset: number, limit: number): PageInfo {
  const from = total === 0 ? 0 : Math.min(offset + 1, total)
  const to = Math.min(offset + limit, total)
  return {
    from,
    to,
    total,
    prev: offset > 0 ? Math.max(0, offset - limit) : null,
    next: offset + limit < total ? offset + limit : null,
  }
}
