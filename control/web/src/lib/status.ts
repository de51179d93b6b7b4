// Summaries of node and agent status: counts, what needs attention first, the alerts (who is
// degraded or offline, and why), and status-change events read from the audit log.
import type { AuditEvent, Status } from '../api/types.ts'

export const STATUSES: readonly Status[] = ['online', 'degraded', 'offline', 'unknown']

export function isStatus(value: unknown): value is Status {
  return typeof value === 'string' && (STATUSES as readonly string[]).includes(value)
}

export function countByStatus(items: readonly { status: Status }[]): Record<Status, number> {
  const counts: Record<Status, number> = { online: 0, degraded: 0, offline: 0, unknown: 0 }
  for (const item of items) counts[item.status] += 1
  return counts
}

const ATTENTION: Record<Status, number> = { offline: 0, degraded: 1, unknown: 2, online: 3 }

/** Enabled things that are offline or degraded first, then unknown, then online, then disabled;
 * by name within each group. */
export function byAttention<T extends { status: Status; enabled: boolean; name: string }>(items: readonly T[]): T[] {
  const key = (x: T) => (x.enabled ? ATTENTION[x.status] : 4)
  return [...items].sort((a, b) => key(a) - key(b) || a.name.localeCompare(b.name))
}

export type SubjectKind = 'node' | 'agent'

interface Subject {
  id: string
  name: string
  enabled: boolean
  status: Status
  status_detail: string
  problems: string[]
  last_seen_at: string | null
}

export interface Alert {
  kind: SubjectKind
  id: string
  name: string
  status: Status
  detail: string
  /** what the process itself reported (the detail may add the control plane's own findings) */
  problems: string[]
  /** a problem with its tunnel certificate (expiring and not renewed, expired, unreadable) */
  certificate: boolean
  lastSeen: string | null
}

// The problems a process reports are text (common/channel/client.py); those about its
// tunnel certificate all name it.
const CERTIFICATE = /\bcertificate\b/i

export function isCertificateProblem(problem: string): boolean {
  return CERTIFICATE.test(problem)
}

/** Enabled nodes and agents that are offline or degraded, or report a certificate problem:
 * offline first, then degraded, certificate warnings first within each, then by name.
 * Disabled ones are left out (their last status is history). */
export function alertsOf(nodes: readonly Subject[], agents: readonly Subject[]): Alert[] {
  const alerts: Alert[] = []
  for (const [kind, items] of [['node', nodes], ['agent', agents]] as const) {
    for (const x of items) {
      const certificate = x.problems.some(isCertificateProblem)
      if (!x.enabled || (x.status !== 'offline' && x.status !== 'degraded' && !certificate)) continue
      alerts.push({ kind, id: x.id, name: x.name, status: x.status, detail: x.status_detail, problems: x.problems, certificate, lastSeen: x.last_seen_at })
    }
  }
  const rank = (a: Alert) => ATTENTION[a.status] * 2 + (a.certificate ? 0 : 1)
  return alerts.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name) || a.kind.localeCompare(b.kind))
}

export interface StatusChange {
  id: number
  at: string
  kind: SubjectKind
  subjectId: string | null
  name: string
  from: Status | null
  to: Status | null
  detail: string
  /** changes not logged before this one (the hourly budget per node or agent) */
  suppressed: number
}

/** A `node.status.changed` / `agent.status.changed` audit event as a change; null for others. */
export function statusChange(event: AuditEvent): StatusChange | null {
  const kind = event.action === 'node.status.changed' ? 'node' : event.action === 'agent.status.changed' ? 'agent' : null
  if (!kind) return null
  const before = event.before ?? {}
  const after = event.after ?? {}
  const suppressed = after.suppressed
  return {
    id: event.id,
    at: event.at,
    kind,
    subjectId: event.target_id,
    name: event.target_label ?? event.target_id ?? '',
    from: isStatus(before.status) ? before.status : null,
    to: isStatus(after.status) ? after.status : null,
    detail: typeof after.detail === 'string' ? after.detail : '',
    suppressed: typeof suppressed === 'number' && suppressed > 0 ? suppressed : 0,
  }
}
