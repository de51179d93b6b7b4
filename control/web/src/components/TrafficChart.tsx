import { useApp } from '../app/context.ts'
import { hasData, polyline, type Series } from '../lib/chart.ts'
import { EmptyState } from './EmptyState.tsx'

const W = 300
const H = 80

/** Requests/s or bandwidth over time. The control plane has no traffic data yet (it arrives
 * with status reporting from nodes and agents), so today every chart shows its empty state. */
export function TrafficChart({ title, series }: { title: string; series: readonly Series[] | null }) {
  const { t } = useApp()
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {hasData(series) ? (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title} preserveAspectRatio="none">
          {series.map((s, i) => (
            <polyline key={s.label} class={`line line-${i % 4}`} points={polyline(s.points, W, H)} />
          ))}
        </svg>
      ) : (
        <EmptyState title={t('chart.empty')}>{t('chart.emptyWhy')}</EmptyState>
      )}
    </figure>
  )
}
