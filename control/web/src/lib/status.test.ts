import { describe, expect, it } from 'vitest'
import type { AuditEvent } from '../api/types.ts'
import { peersBy } from './connections.ts'
import { eventsAuditPath, formatEventsQuery, parseEventsQuery } from './eventsQuery.ts'
import { alertsOf, isCertificateProblem, statusChange } from './status.ts'

function subject(name: string, status: 'online' | 'degraded' | 'offline' | 'unknown', extra: { enabled?: boolean; problems?: string[] } = {}) {
  return { id: `id-${name}`, name, status, status_detail: `${status} detail`, enabled: extra.enabled ?? true, problems: extra.problems ?? [], last_seen_at: null }
}

describe('alerts', () => {
  const cert = 'the tunnel certificate expires in 20 h and is not renewed'
  it('lists enabled subjects that are offline or degraded, offline first', () => {
    const alerts = alertsOf(
      [subject('n-ok', 'online'), subject('n-off', 'offline'), subject('n-deg', 'degraded', { problems: ['origin down'] }), subject('n-dis', 'offline', { enabled: false })],
      [subject('a-unknown', 'unknown'), subject('a-cert', 'degraded', { problems: [cert] }), subject('a-off', 'offline')],
    )
    expect(alerts.map((a) => [a.kind, a.name, a.certificate])).toEqual([
      ['agent', 'a-off', false],
      ['node', 'n-off', false],
      ['agent', 'a-cert', true],
      ['node', 'n-deg', false],
    ])
    expect(alerts[3]?.problems).toEqual(['origin down'])
  })
  it('recognises certificate problems', () => {
    expect(isCertificateProblem(cert)).toBe(true)
    expect(isCertificateProblem('the tunnel certificate has expired: enroll again with a new token')).toBe(true)
    expect(isCertificateProblem('no agent connected, although it routes 2 service(s)')).toBe(false)
  })
  it('is empty when all is well', () => {
    expect(alertsOf([subject('n', 'online')], [subject('a', 'unknown')])).toEqual([])
  })
})

function event(extra: Partial<AuditEvent>): AuditEvent {
  return {
    id: 7, at: '2026-11-28T12:00:00Z', action: 'node.status.changed', actor_id: null, actor_label: 'kokoa status', actor_type: 'system',
    before: { status: 'unknown', detail: '' }, after: { status: 'online', detail: '' }, client_ip: null, org_id: 'o', target_id: 'n1',
    target_label: 'tokyo-1', target_type: 'node', ...extra,
  } as AuditEvent
}

describe('status-change events', () => {
  it('reads before and after', () => {
    expect(statusChange(event({}))).toEqual({ id: 7, at: '2026-11-28T12:00:00Z', kind: 'node', subjectId: 'n1', name: 'tokyo-1', from: 'unknown', to: 'online', detail: '', suppressed: 0 })
  })
  it('carries the suppressed count and the detail', () => {
    const change = statusChange(event({ action: 'agent.status.changed', after: { status: 'offline', detail: 'no status message since …', suppressed: 4 } }))
    expect(change).toMatchObject({ kind: 'agent', to: 'offline', detail: 'no status message since …', suppressed: 4 })
  })
  it('ignores other actions and odd values', () => {
    expect(statusChange(event({ action: 'node.update' }))).toBeNull()
    expect(statusChange(event({ before: null, after: { status: 'sideways' } }))).toMatchObject({ from: null, to: null })
  })
})

describe('the connection matrix from one side', () => {
  const side = (rtt: number | null, since = '2026-11-28T11:00:00Z') => ({ reported_at: '2026-11-28T12:00:00Z', rtt_ms: rtt, since })
  const rows = [
    { agent_id: 'a1', agent_name: 'home', node_id: 'n2', node_name: 'osaka', seen_by_agent: side(9), seen_by_node: side(11) },
    { agent_id: 'a1', agent_name: 'home', node_id: 'n1', node_name: 'tokyo', seen_by_agent: null, seen_by_node: side(4) },
    { agent_id: 'a2', agent_name: 'lab', node_id: 'n1', node_name: 'tokyo', seen_by_agent: side(null), seen_by_node: null },
    { agent_id: 'a3', agent_name: 'gone', node_id: 'n1', node_name: 'tokyo', seen_by_agent: null, seen_by_node: null },
  ]
  it('gives each agent its nodes, by name, with its own RTT first', () => {
    const byAgent = peersBy(rows, 'agent')
    expect(byAgent.get('a1')).toEqual([
      { id: 'n2', name: 'osaka', since: '2026-11-28T11:00:00Z', rttMs: 9, seenBy: 'both' },
      { id: 'n1', name: 'tokyo', since: '2026-11-28T11:00:00Z', rttMs: 4, seenBy: 'node' },
    ])
    expect(byAgent.get('a2')).toEqual([{ id: 'n1', name: 'tokyo', since: '2026-11-28T11:00:00Z', rttMs: null, seenBy: 'agent' }])
    expect(byAgent.has('a3')).toBe(false)
  })
  it('gives each node its agents', () => {
    const byNode = peersBy(rows, 'node')
    expect(byNode.get('n1')?.map((p) => [p.name, p.rttMs, p.seenBy])).toEqual([['home', 4, 'node'], ['lab', null, 'agent']])
    expect(byNode.get('n2')?.map((p) => p.rttMs)).toEqual([11])
  })
})

describe('the monitoring page’s query', () => {
  const id = '0b7e9a52-8d6c-4c1e-9f55-3a2b1c0d9e8f'
  it('round-trips a subject and a page', () => {
    expect(parseEventsQuery(`?subject=${id}&offset=25`)).toEqual({ subject: id, offset: 25 })
    expect(formatEventsQuery({ subject: id, offset: 25 })).toBe(`?subject=${id}&offset=25`)
    expect(formatEventsQuery({ subject: '', offset: 0 })).toBe('')
  })
  it('ignores what is not an id or a page', () => {
    expect(parseEventsQuery('?subject=../x&offset=-3')).toEqual({ subject: '', offset: 0 })
  })
  it('links to the audit log', () => {
    expect(eventsAuditPath('o', id)).toBe(`/orgs/o/audit?target_id=${id}`)
    expect(eventsAuditPath('o', '', 'agent')).toBe('/orgs/o/audit?action=agent.status.changed')
  })
})
