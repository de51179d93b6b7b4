import { unwrap } from '../api/client.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useResource } from '../app/hooks.ts'
import { can } from '../lib/permissions.ts'
import { orgPath } from '../lib/routes.ts'
import { AuditTable } from './AuditTable.tsx'
import { EmptyState } from './EmptyState.tsx'
import { Link } from './Link.tsx'
import { ProblemAlert } from './ProblemAlert.tsx'

/** The latest audit events (of one target, or of the organisation), for those who may read
 * the audit log (operators and up); nothing for viewers. */
export function RecentEvents({ targetType, targetId, limit = 8 }: { targetType?: string; targetId?: string; limit?: number }) {
  const org = useOrg()
  if (!can(org.role, 'audit.read')) return null
  return <Recent targetType={targetType} targetId={targetId} limit={limit} />
}

function Recent({ targetType, targetId, limit }: { targetType?: string | undefined; targetId?: string | undefined; limit: number }) {
  const { api, t } = useApp()
  const org = useOrg()
  const filter = { ...(targetType ? { target_type: targetType } : {}), ...(targetId ? { target_id: targetId } : {}) }
  const events = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/audit', { params: { path: { org_id: org.id }, query: { ...filter, limit } }, signal })),
    [org.id, targetType, targetId, limit],
  )
  const more = orgPath(org.id, 'audit') + '?' + new URLSearchParams(filter).toString()
  return (
    <section class="panel">
      <h2>{t('audit.recent')}</h2>
      <ProblemAlert error={events.error} stale={events.data !== undefined} />
      {events.data &&
        (events.data.items.length === 0 ? (
          <EmptyState title={t('audit.none')} />
        ) : (
          <>
            <AuditTable events={events.data.items} caption={t('audit.recent')} compact />
            <p>
              <Link href={more}>{t('audit.all')}</Link>
            </p>
          </>
        ))}
    </section>
  )
}
