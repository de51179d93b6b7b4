import { unwrap } from '../api/client.ts'
import type { AgentStatus, NodeStatus } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useResource } from '../app/hooks.ts'
import { AlertList, StatusCountList } from '../components/Alerts.tsx'
import { useCertificates } from '../components/Certificates.tsx'
import { EmptyState } from '../components/EmptyState.tsx'
import { Link } from '../components/Link.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { RecentEvents } from '../components/RecentEvents.tsx'
import { StatusBadge } from '../components/StatusBadge.tsx'
import { StatusEventTable } from '../components/StatusEvents.tsx'
import { RangeSelect, TrafficPanel } from '../components/TrafficPanel.tsx'
import { certificateAlerts } from '../lib/certificates.ts'
import { formatRelative } from '../lib/format.ts'
import { allPages } from '../lib/pages.ts'
import { orgPath } from '../lib/routes.ts'
import { alertsOf, byAttention } from '../lib/status.ts'

const SHOWN = 8
const EVENTS = 8

function useOverview() {
  const { api } = useApp()
  const org = useOrg()
  const path = { org_id: org.id }
  return useResource(
    async (signal) => {
      const [services, enabled, summary, nodes, agents] = await Promise.all([
        unwrap(api.GET('/api/v1/orgs/{org_id}/services', { params: { path, query: { limit: 1 } }, signal })),
        unwrap(api.GET('/api/v1/orgs/{org_id}/services', { params: { path, query: { limit: 1, enabled: true } }, signal })),
        unwrap(api.GET('/api/v1/orgs/{org_id}/status', { params: { path }, signal })),
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/nodes', { params: { path, query: { limit, offset } }, signal }))),
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/agents', { params: { path, query: { limit, offset } }, signal }))),
      ])
      return { services: services.total, servicesEnabled: enabled.total, summary, nodes, agents }
    },
    [org.id],
  )
}

function Glance({ kind, counts, items, total }: { kind: 'nodes' | 'agents'; counts: Parameters<typeof StatusCountList>[0]['counts']; items: readonly (NodeStatus | AgentStatus)[]; total: number }) {
  const { t, locale } = useApp()
  const org = useOrg()
  const title = t(kind === 'nodes' ? 'nav.nodes' : 'nav.agents')
  return (
    <section class="panel">
      <h2>
        <Link href={orgPath(org.id, kind)}>{title}</Link> <span class="count">{total}</span>
      </h2>
      {total === 0 ? (
        <EmptyState title={t(kind === 'nodes' ? 'nodes.empty' : 'agents.empty')} />
      ) : (
        <>
          <StatusCountList counts={counts} label={t('dashboard.countsOf', { what: title })} />
          <ul class="glance">
            {byAttention(items)
              .slice(0, SHOWN)
              .map((x) => (
                <li key={x.id}>
                  <Link href={orgPath(org.id, kind, x.id)}>{x.name}</Link> <StatusBadge status={x.status} detail={x.status_detail} />
                  {!x.enabled && <span class="hint"> {t('common.disabled')}</span>}
                  <span class="hint"> {t('dashboard.seen', { when: formatRelative(x.last_seen_at, locale) })}</span>
                </li>
              ))}
          </ul>
        </>
      )}
    </section>
  )
}

function StatusEventsPanel() {
  const { api, t } = useApp()
  const org = useOrg()
  const events = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/events', { params: { path: { org_id: org.id }, query: { limit: EVENTS } }, signal })),
    [org.id],
  )
  return (
    <section class="panel">
      <h2>{t('events.recent')}</h2>
      <ProblemAlert error={events.error} stale={events.data !== undefined} />
      {events.data &&
        (events.data.items.length === 0 ? (
          <EmptyState title={t('events.none')}>{t('events.noneWhy')}</EmptyState>
        ) : (
          <StatusEventTable events={events.data.items} caption={t('events.recent')} />
        ))}
      <p>
        <Link href={orgPath(org.id, 'monitoring')}>{t('events.all')}</Link>
      </p>
    </section>
  )
}

export function Dashboard() {
  const { t } = useApp()
  const org = useOrg()
  const overview = useOverview()
  const certificates = useCertificates()
  const o = overview.data
  return (
    <section>
      <PageHeader title={t('dashboard.title', { org: org.name })} />
      <ProblemAlert error={overview.error} stale={o !== undefined} />
      {!o ? (
        overview.error ? null : <Loading />
      ) : (
        <>
          <div class="cards">
            <section class="panel">
              <h2>
                <Link href={orgPath(org.id, 'services')}>{t('nav.services')}</Link> <span class="count">{o.services}</span>
              </h2>
              {o.services === 0 ? (
                <EmptyState title={t('services.empty')} />
              ) : (
                <p>{t('dashboard.servicesEnabled', { enabled: o.servicesEnabled, disabled: o.services - o.servicesEnabled })}</p>
              )}
            </section>
            <Glance kind="nodes" counts={o.summary.nodes} items={o.nodes.items} total={o.nodes.total} />
            <Glance kind="agents" counts={o.summary.agents} items={o.agents.items} total={o.agents.total} />
          </div>
          <section class="panel">
            <h2>{t('dashboard.alerts')}</h2>
            <ProblemAlert error={certificates.error} stale={certificates.data !== undefined} />
            <AlertList alerts={alertsOf(o.nodes.items, o.agents.items)} certificates={certificateAlerts(certificates.data?.items ?? [])} />
          </section>
        </>
      )}
      <div class="section-head">
        <h2>{t('dashboard.traffic')}</h2>
        <RangeSelect />
      </div>
      <TrafficPanel heading="chart.byService" filter={{ by: 'service' }} />
      <TrafficPanel heading="chart.byNode" filter={{ by: 'node' }} />
      <StatusEventsPanel />
      <RecentEvents />
    </section>
  )
}
