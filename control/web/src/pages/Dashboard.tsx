import { unwrap } from '../api/client.ts'
import type { Agent, Node } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useResource } from '../app/hooks.ts'
import { EmptyState } from '../components/EmptyState.tsx'
import { Link } from '../components/Link.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { RecentEvents } from '../components/RecentEvents.tsx'
import { StatusBadge } from '../components/StatusBadge.tsx'
import { TrafficChart } from '../components/TrafficChart.tsx'
import { formatRelative } from '../lib/format.ts'
import { byAttention, countByStatus, STATUSES } from '../lib/status.ts'
import { orgPath } from '../lib/routes.ts'

const GLANCE = 200
const SHOWN = 8

function useOverview() {
  const { api } = useApp()
  const org = useOrg()
  const path = { org_id: org.id }
  return useResource(
    async (signal) => {
      const [services, enabled, nodes, agents] = await Promise.all([
        unwrap(api.GET('/api/v1/orgs/{org_id}/services', { params: { path, query: { limit: 1 } }, signal })),
        unwrap(api.GET('/api/v1/orgs/{org_id}/services', { params: { path, query: { limit: 1, enabled: true } }, signal })),
        unwrap(api.GET('/api/v1/orgs/{org_id}/nodes', { params: { path, query: { limit: GLANCE } }, signal })),
        unwrap(api.GET('/api/v1/orgs/{org_id}/agents', { params: { path, query: { limit: GLANCE } }, signal })),
      ])
      return { services: services.total, servicesEnabled: enabled.total, nodes, agents }
    },
    [org.id],
  )
}

function StatusCounts({ items, total }: { items: readonly (Node | Agent)[]; total: number }) {
  const { t } = useApp()
  const counts = countByStatus(items)
  return (
    <ul class="counts">
      {STATUSES.filter((s) => counts[s] > 0).map((s) => (
        <li key={s}>
          <StatusBadge status={s} /> {counts[s]}
        </li>
      ))}
      {total > items.length && <li class="hint">{t('dashboard.countedOf', { shown: items.length, total })}</li>}
    </ul>
  )
}

function Glance({ title, href, items, total, kind }: { title: string; href: string; items: readonly (Node | Agent)[]; total: number; kind: 'nodes' | 'agents' }) {
  const { t, locale } = useApp()
  const org = useOrg()
  const shown = byAttention(items).slice(0, SHOWN)
  return (
    <section class="panel">
      <h2>
        <Link href={href}>{title}</Link> <span class="count">{total}</span>
      </h2>
      {total === 0 ? (
        <EmptyState title={t(kind === 'nodes' ? 'nodes.empty' : 'agents.empty')} />
      ) : (
        <>
          <StatusCounts items={items} total={total} />
          <ul class="glance">
            {shown.map((x) => (
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

export function Dashboard() {
  const { t } = useApp()
  const org = useOrg()
  const overview = useOverview()
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
            <Glance title={t('nav.nodes')} href={orgPath(org.id, 'nodes')} items={o.nodes.items} total={o.nodes.total} kind="nodes" />
            <Glance title={t('nav.agents')} href={orgPath(org.id, 'agents')} items={o.agents.items} total={o.agents.total} kind="agents" />
          </div>
          <h2>{t('dashboard.traffic')}</h2>
          <div class="charts">
            <TrafficChart title={t('chart.requests')} series={null} />
            <TrafficChart title={t('chart.bandwidth')} series={null} />
          </div>
          <section class="panel">
            <h2>{t('dashboard.alerts')}</h2>
            <EmptyState title={t('dashboard.noAlerts')}>{t('dashboard.alertsWhy')}</EmptyState>
          </section>
          <RecentEvents />
        </>
      )}
    </section>
  )
}
