// The monitoring page's filter (one node or agent) and page, kept in the URL like the lists,
// and the way to the same events in the full audit log.
import { orgPath } from './routes.ts'

export interface EventsQuery {
  subject: string // a node or agent id, or '' for all
  offset: number
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** ?subject=<id>&offset=…; anything else (or an id that is not one) is ignored. */
export function parseEventsQuery(search: string): EventsQuery {
  const p = new URLSearchParams(search)
  const subject = p.get('subject') ?? ''
  const offset = Number(p.get('offset') ?? '0')
  return { subject: UUID.test(subject) ? subject : '', offset: Number.isInteger(offset) && offset > 0 ? offset : 0 }
}

export function formatEventsQuery(q: EventsQuery): string {
  const p = new URLSearchParams()
  if (q.subject) p.set('subject', q.subject)
  if (q.offset > 0) p.set('offset', String(q.offset))
  const text = p.toString()
  return text ? `?${text}` : ''
}

/** The audit log page for one subject (all its events: status changes, enable, disable, …),
 * or for the status changes of all nodes or all agents. */
export function eventsAuditPath(org: string, subject: string, kind: 'node' | 'agent' = 'node'): string {
  const p = new URLSearchParams(subject ? { target_id: subject } : { action: `${kind}.status.changed` })
  return `${orgPath(org, 'audit')}?${p.toString()}`
}
