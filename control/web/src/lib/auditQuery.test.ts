import { describe, expect, it } from 'vitest'
import { auditExportUrl, formatAuditQuery, invalidAuditFields, parseAuditQuery, toApiAuditFilter } from './auditQuery.ts'

describe('audit filters', () => {
  it('round-trip through the URL', () => {
    const search = '?action=service.*&target_type=service&since=2026-11-01&until=2026-11-28&offset=25'
    expect(formatAuditQuery(parseAuditQuery(search))).toBe(search.replace('*', '*'))
  })
  it('flag values the API would refuse', () => {
    const q = parseAuditQuery('?action=drop table&actor_id=not-a-uuid&since=yesterday')
    expect(invalidAuditFields(q).sort()).toEqual(['action', 'actor_id', 'since'])
    expect(toApiAuditFilter(q)).toEqual({})
  })
  it('send dates as instants, the until day included', () => {
    const q = parseAuditQuery('?since=2026-11-01&until=2026-11-01')
    const api = toApiAuditFilter(q)
    const since = new Date(api.since!)
    const until = new Date(api.until!)
    expect(until.getTime() - since.getTime()).toBe(24 * 3600 * 1000)
    expect([since.getFullYear(), since.getMonth(), since.getDate(), since.getHours()]).toEqual([2026, 10, 1, 0])
  })
  it('build the export link with the same filters', () => {
    const url = auditExportUrl('org 1', parseAuditQuery('?action=service.*&offset=50'), 'csv')
    expect(url).toBe('/api/v1/orgs/org%201/audit/export?action=service.*&format=csv')
  })
})
