import type { StatusCounts } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { formatRelative } from '../lib/format.ts'
import type { CertificateAlert } from '../lib/certificates.ts'
import { orgPath } from '../lib/routes.ts'
import { STATUSES, type Alert } from '../lib/status.ts'
import { CertificateAlertItems } from './Certificates.tsx'
import { EmptyState } from './EmptyState.tsx'
import { Link } from './Link.tsx'
import { StatusBadge } from './StatusBadge.tsx'

const PATH = { node: 'nodes', agent: 'agents' } as const

/** Online, degraded, offline, unknown and disabled counts, as words with their shapes. */
export function StatusCountList({ counts, label }: { counts: StatusCounts; label: string }) {
  const { t } = useApp()
  return (
    <ul class="counts" aria-label={label}>
      {STATUSES.map((s) => (
        <li key={s}>
          <StatusBadge status={s} /> <span class="count-value">{counts[s] ?? 0}</span>
        </li>
      ))}
      <li>
        <span class="badge off">{t('common.disabled')}</span> <span class="count-value">{counts.disabled ?? 0}</span>
      </li>
    </ul>
  )
}

/** What needs attention now: nodes and agents offline or degraded, with why, then HTTPS
 * certificates expired or expiring soon. */
export function AlertList({ alerts, certificates = [] }: { alerts: readonly Alert[]; certificates?: readonly CertificateAlert[] }) {
  const { t, locale } = useApp()
  const org = useOrg()
  if (alerts.length === 0 && certificates.length === 0) return <EmptyState title={t('alerts.none')}>{t('alerts.noneWhy')}</EmptyState>
  return (
    <ul class="alerts">
      {alerts.map((a) => {
        // The detail names the process's problems while it reports; once it is offline they
        // are its last report's, listed apart.
        const extra = a.problems.filter((p) => !a.detail.includes(p))
        return (
          <li key={`${a.kind}-${a.id}`} class={`alert-item alert-${a.status}`}>
            <div class="alert-head">
              <StatusBadge status={a.status} /> <span class="hint">{t(a.kind === 'node' ? 'alerts.node' : 'alerts.agent')}</span>{' '}
              <Link href={orgPath(org.id, PATH[a.kind], a.id)}>{a.name}</Link>
              {a.certificate && <span class="tag">{t('alerts.certificate')}</span>}
              <span class="hint"> {t('dashboard.seen', { when: formatRelative(a.lastSeen, locale) })}</span>
            </div>
            {a.detail && <p class="alert-text">{a.detail}</p>}
            {extra.length > 0 && (
              <>
                <p class="hint">{t('alerts.lastProblems')}</p>
                <ul class="problems">
                  {extra.map((p) => (
                    <li key={p}>{p}</li>
                  ))}
                </ul>
              </>
            )}
          </li>
        )
      })}
      <CertificateAlertItems alerts={certificates} />
    </ul>
  )
}

/** A node's or agent's own problems, as reported in its last status message. */
export function ProblemList({ problems }: { problems: readonly string[] }) {
  const { t } = useApp()
  if (problems.length === 0) return <>{t('status.noProblems')}</>
  return (
    <ul class="problems">
      {problems.map((p) => (
        <li key={p}>{p}</li>
      ))}
    </ul>
  )
}
