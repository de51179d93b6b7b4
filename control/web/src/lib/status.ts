// Summaries of node and agent status for the dashboard.
import type { Status } from '../api/types.ts'

export const STATUSES: readonly Status[] = ['online', 'degraded', 'offline', 'unknown']

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
