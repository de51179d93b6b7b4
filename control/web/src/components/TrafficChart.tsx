import type { Traffic } from '../api/types.ts'
import { useApp } from '../app/context.ts'
import { layout } from '../lib/chart.ts'
import { formatBytes, formatClock, formatNumber } from '../lib/format.ts'
import { rateSeries, summarise, type Metric } from '../lib/traffic.ts'
import { EmptyState } from './EmptyState.tsx'

const W = 300
const H = 100
/** Series drawn per chart: four colours, each with its own dash pattern (not colour alone). */
export const CHART_SERIES = 4
const DAY_MS = 86_400_000

function useFormats(metric: Metric) {
  const { t, locale } = useApp()
  const rate = (v: number) =>
    metric === 'requests' ? t('unit.perSecond', { value: formatNumber(v, locale) }) : t('unit.perSecond', { value: formatBytes(v, locale) })
  const total = (v: number) => (metric === 'requests' ? formatNumber(v, locale) : formatBytes(v, locale))
  return { rate, total }
}

/** Requests/s or bandwidth over time: one line per series (the step still running drawn
 * faint), the top of the scale and the time span as text, and a table under it with each
 * series' latest rate, peak and total — the legend, and what a screen reader reads. */
export function TrafficChart({ title, traffic, metric }: { title: string; traffic: Traffic | undefined; metric: Metric }) {
  const { t, locale } = useApp()
  const fmt = useFormats(metric)
  if (!traffic) return <figure class="chart"><figcaption>{title}</figcaption></figure>
  const series = rateSeries(traffic, metric).slice(0, CHART_SERIES)
  const drawn = layout(series, W, H, true)
  const summaries = summarise(traffic, metric).slice(0, CHART_SERIES)
  if (!drawn || series.length === 0) {
    return (
      <figure class="chart">
        <figcaption>{title}</figcaption>
        <EmptyState title={t('chart.none')}>{t('chart.noneWhy')}</EmptyState>
      </figure>
    )
  }
  const long = drawn.frame.t1 - drawn.frame.t0 > DAY_MS
  const latest = summaries.map((s) => `${s.label} ${s.latest === null ? '—' : fmt.rate(s.latest)}`).join(', ')
  const label = t('chart.label', { title, values: latest })
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div class="plot">
        <span class="axis-top" aria-hidden="true">{fmt.rate(drawn.frame.top)}</span>
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label} preserveAspectRatio="none">
          <title>{label}</title>
          <line class="grid" x1="0" x2={W} y1={H / 2} y2={H / 2} />
          <line class="grid" x1="0" x2={W} y1={H} y2={H} />
          {drawn.lines.map((l, i) => (
            <g key={l.key} class={`s-${i}`}>
              <polyline class="line" points={l.solid} />
              {l.tail && <polyline class="line tail" points={l.tail} />}
            </g>
          ))}
        </svg>
        <span class="axis-x" aria-hidden="true">
          <span>{formatClock(drawn.frame.t0, locale, long)}</span>
          <span>{formatClock(drawn.frame.t1, locale, long)}</span>
        </span>
      </div>
      <table class="legend">
        <caption class="visually-hidden">{title}</caption>
        <thead>
          <tr>
            <th scope="col">{t(`chart.by.${traffic.by}`)}</th>
            <th scope="col">{t('chart.latest')}</th>
            <th scope="col" class="wide-only">{t('chart.peak')}</th>
            <th scope="col">{t('chart.total')}</th>
          </tr>
        </thead>
        <tbody>
          {summaries.map((s, i) => (
            <tr key={s.key}>
              <th scope="row">
                <svg class={`swatch s-${i}`} viewBox="0 0 24 8" aria-hidden="true">
                  <line class="line" x1="0" x2="24" y1="4" y2="4" />
                </svg>
                {s.label}
              </th>
              <td>{s.latest === null ? '—' : fmt.rate(s.latest)}</td>
              <td class="wide-only">{fmt.rate(s.peak)}</td>
              <td>{fmt.total(s.total)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  )
}
