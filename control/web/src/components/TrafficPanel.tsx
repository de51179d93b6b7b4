import { unwrap } from '../api/client.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useResource } from '../app/hooks.ts'
import type { MessageKey } from '../i18n/en.ts'
import { parseRange, RANGES, sinceOf, withRange, type Range } from '../lib/traffic.ts'
import { ProblemAlert } from './ProblemAlert.tsx'
import { CHART_SERIES, TrafficChart } from './TrafficChart.tsx'

export interface TrafficFilter {
  by: 'service' | 'node' | 'agent'
  service_id?: string
  node_id?: string
  agent_id?: string
}

/** The period of the charts, from the URL (?range=6h), and a setter that replaces it. */
export function useRange(): [Range, (range: Range) => void] {
  const { location, navigate } = useApp()
  return [parseRange(location.search), (range) => navigate(location.path + withRange(location.search, range) + location.hash, { replace: true })]
}

export function RangeSelect() {
  const { t } = useApp()
  const [range, setRange] = useRange()
  return (
    <div class="field range">
      <label for="range">{t('chart.range')}</label>
      <select id="range" value={range} onChange={(e) => setRange(e.currentTarget.value as Range)}>
        {(Object.keys(RANGES) as Range[]).map((r) => (
          <option key={r} value={r}>
            {t(`range.${r}`)}
          </option>
        ))}
      </select>
    </div>
  )
}

/** Requests/s and bandwidth for one grouping of the traffic (per service, node or agent,
 * optionally narrowed to one of them), refreshed with the page's polling. */
export function TrafficPanel({ heading, filter }: { heading: MessageKey; filter: TrafficFilter }) {
  const { api, t } = useApp()
  const org = useOrg()
  const [range] = useRange()
  const traffic = useResource(
    (signal) =>
      unwrap(
        api.GET('/api/v1/orgs/{org_id}/status/traffic', {
          params: { path: { org_id: org.id }, query: { ...filter, since: sinceOf(range, Date.now()), limit: CHART_SERIES } },
          signal,
        }),
      ),
    [org.id, range, filter.by, filter.service_id, filter.node_id, filter.agent_id],
  )
  const data = traffic.data
  const by = t(heading)
  return (
    <section class="traffic">
      <h3>{by}</h3>
      <ProblemAlert error={traffic.error} stale={data !== undefined} />
      <div class="charts">
        <TrafficChart title={t('chart.title', { metric: t('chart.requests'), by })} traffic={data} metric="requests" />
        <TrafficChart title={t('chart.title', { metric: t('chart.bandwidth'), by })} traffic={data} metric="bandwidth" />
      </div>
      {data && data.total > data.series.length && <p class="hint">{t('chart.top', { shown: data.series.length, total: data.total })}</p>}
    </section>
  )
}
