import type { AuditEvent } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { formatDateTime } from '../lib/format.ts'
import { orgPath } from '../lib/routes.ts'
import { statusChange } from '../lib/status.ts'
import { Link } from './Link.tsx'
import { StatusBadge } from './StatusBadge.tsx'

const PATH = { node: 'nodes', agent: 'agents' } as const

/** Status changes of nodes and agents, newest first: when, who, from → to, and why. */
export function StatusEventTable({ events, caption }: { events: readonly AuditEvent[]; caption: string }) {
  const { t, locale } = useApp()
  const org = useOrg()
  const changes = events.map(statusChange).filter((c) => c !== null)
  return (
    <div class="table-wrap">
      <table class="status-events">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{t('audit.at')}</th>
            <th scope="col">{t('events.subject')}</th>
            <th scope="col">{t('events.change')}</th>
            <th scope="col" class="wide-only">{t('events.detail')}</th>
          </tr>
        </thead>
        <tbody>
          {changes.map((c) => (
            <tr key={c.id}>
              <td class="nowrap">{formatDateTime(c.at, locale)}</td>
              <td>
                {c.subjectId ? <Link href={orgPath(org.id, PATH[c.kind], c.subjectId)}>{c.name}</Link> : c.name}
                <span class="hint block">{t(c.kind === 'node' ? 'alerts.node' : 'alerts.agent')}</span>
              </td>
              <td>
                <span aria-hidden="true">
                  {c.from ? <StatusBadge status={c.from} /> : '—'} → {c.to ? <StatusBadge status={c.to} /> : '—'}
                </span>
                <span class="visually-hidden">{t('events.fromTo', { from: c.from ? t(`status.${c.from}`) : '—', to: c.to ? t(`status.${c.to}`) : '—' })}</span>
              </td>
              <td class="wide-only">
                {c.detail || '—'}
                {c.suppressed > 0 && <span class="hint block">{t('events.suppressed', { count: c.suppressed })}</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
