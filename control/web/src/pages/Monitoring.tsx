import { unwrap } from '../api/client.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useResource } from '../app/hooks.ts'
import { AlertList } from '../components/Alerts.tsx'
import { useCertificates } from '../components/Certificates.tsx'
import { EmptyState } from '../components/EmptyState.tsx'
import { Link } from '../components/Link.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Pagination } from '../components/Pagination.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { StatusEventTable } from '../components/StatusEvents.tsx'
import { certificateAlerts } from '../lib/certificates.ts'
import { eventsAuditPath, formatEventsQuery, parseEventsQuery, type EventsQuery } from '../lib/eventsQuery.ts'
import { DEFAULT_LIMIT } from '../lib/listQuery.ts'
import { allPages } from '../lib/pages.ts'
import { can } from '../lib/permissions.ts'
import { alertsOf } from '../lib/status.ts'

/** Monitoring: what needs attention now, and every status change of nodes and agents. */
export function Monitoring() {
  const { api, t, location, navigate } = useApp()
  const org = useOrg()
  const query = parseEventsQuery(location.search)
  const go = (q: EventsQuery) => navigate(location.path + formatEventsQuery(q), { replace: true })
  const path = { org_id: org.id }
  const subjects = useResource(
    async (signal) => {
      const [nodes, agents] = await Promise.all([
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/nodes', { params: { path, query: { limit, offset } }, signal }))),
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/agents', { params: { path, query: { limit, offset } }, signal }))),
      ])
      return { nodes: nodes.items, agents: agents.items }
    },
    [org.id],
  )
  const events = useResource(
    (signal) =>
      unwrap(
        api.GET('/api/v1/orgs/{org_id}/status/events', {
          params: { path, query: { limit: DEFAULT_LIMIT, offset: query.offset, ...(query.subject ? { subject_id: query.subject } : {}) } },
          signal,
        }),
      ),
    [org.id, location.search],
  )
  const certificates = useCertificates()
  const s = subjects.data
  return (
    <section>
      <PageHeader title={t('monitoring.title')} />
      <section class="panel">
        <h2>{t('dashboard.alerts')}</h2>
        <ProblemAlert error={subjects.error} stale={s !== undefined} />
        <ProblemAlert error={certificates.error} stale={certificates.data !== undefined} />
        {s ? <AlertList alerts={alertsOf(s.nodes, s.agents)} certificates={certificateAlerts(certificates.data?.items ?? [])} /> : subjects.error ? null : <Loading />}
      </section>
      <h2>{t('events.title')}</h2>
      <div class="filters">
        <div class="field">
          <label for="subject">{t('events.subject')}</label>
          <select id="subject" value={query.subject} onChange={(e) => go({ subject: e.currentTarget.value, offset: 0 })}>
            <option value="">{t('events.allSubjects')}</option>
            {s && s.nodes.length > 0 && (
              <optgroup label={t('nav.nodes')}>
                {s.nodes.map((n) => (
                  <option key={n.id} value={n.id}>
                    {n.name}
                  </option>
                ))}
              </optgroup>
            )}
            {s && s.agents.length > 0 && (
              <optgroup label={t('nav.agents')}>
                {s.agents.map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.name}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
        </div>
      </div>
      <ProblemAlert error={events.error} stale={events.data !== undefined} />
      {!events.data ? (
        events.error ? null : <Loading />
      ) : events.data.items.length === 0 ? (
        <EmptyState title={t('events.none')}>{t('events.noneWhy')}</EmptyState>
      ) : (
        <StatusEventTable events={events.data.items} caption={t('events.title')} />
      )}
      {events.data && <Pagination total={events.data.total} offset={query.offset} limit={DEFAULT_LIMIT} onPage={(offset) => go({ ...query, offset })} />}
      {can(org.role, 'audit.read') && (
        <p>
          {query.subject ? (
            <Link href={eventsAuditPath(org.id, query.subject)}>{t('monitoring.auditSubject')}</Link>
          ) : (
            <>
              <Link href={eventsAuditPath(org.id, '', 'node')}>{t('monitoring.auditNodes')}</Link>
              {' · '}
              <Link href={eventsAuditPath(org.id, '', 'agent')}>{t('monitoring.auditAgents')}</Link>
            </>
          )}
        </p>
      )}
    </section>
  )
}
