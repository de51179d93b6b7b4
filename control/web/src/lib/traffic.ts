// Traffic time series from GET …/status/traffic: per-step counts → per-second rates for the
// charts, a summary per series for the table under each chart, and the time ranges offered.
import type { Traffic, TrafficPoint } from '../api/types.ts'
import type { Series } from './chart.ts'

export type Metric = 'requests' | 'bandwidth'

/** What each metric counts in a point: requests, or bytes sent in responses. */
const COUNT: Record<Metric, (p: TrafficPoint) => number> = {
  requests: (p) => p.requests,
  bandwidth: (p) => p.bytes_out,
}

/** A count over a step of `step` seconds as a rate per second (0 for a step that is not > 0). */
export function perSecond(count: number, step: number): number {
  return step > 0 ? count / step : 0
}

/** One chart series per traffic series: (start of the step in ms, count / step). The API's
 * last point is the step that holds "now", still in progress (see `summarise`). */
export function rateSeries(traffic: Traffic, metric: Metric): Series[] {
  return traffic.series.map((s) => ({
    key: s.id,
    label: s.name,
    points: s.points.map((p) => [Date.parse(p.at), perSecond(COUNT[metric](p), traffic.step)] as const),
  }))
}

export interface Summary {
  key: string
  label: string
  /** the rate of the last complete step (null when there is none) */
  latest: number | null
  /** the highest rate of any step in the window */
  peak: number
  /** the count over the whole window (requests, or bytes) */
  total: number
}

/** Latest, peak and total per series. The last point is left out of "latest": its step is
 * still running, so its count is partial and its rate would read low. */
export function summarise(traffic: Traffic, metric: Metric): Summary[] {
  return traffic.series.map((s) => {
    const counts = s.points.map(COUNT[metric])
    const complete = counts.slice(0, -1)
    const last = complete[complete.length - 1]
    return {
      key: s.id,
      label: s.name,
      latest: last === undefined ? null : perSecond(last, traffic.step),
      peak: perSecond(Math.max(0, ...counts), traffic.step),
      total: counts.reduce((a, b) => a + b, 0),
    }
  })
}

export const RANGES = { '15m': 900, '1h': 3600, '6h': 6 * 3600, '24h': 24 * 3600, '7d': 7 * 24 * 3600 } as const
export type Range = keyof typeof RANGES
export const DEFAULT_RANGE: Range = '1h'

export function isRange(value: unknown): value is Range {
  return typeof value === 'string' && Object.hasOwn(RANGES, value)
}

/** The range in the URL (?range=6h), else the default. */
export function parseRange(search: string): Range {
  const value = new URLSearchParams(search).get('range')
  return isRange(value) ? value : DEFAULT_RANGE
}

/** `search` with the range set (the default left out), keeping the other parameters. */
export function withRange(search: string, range: Range): string {
  const p = new URLSearchParams(search)
  if (range === DEFAULT_RANGE) p.delete('range')
  else p.set('range', range)
  const text = p.toString()
  return text ? `?${text}` : ''
}

/** The `since` to ask for: `range` before `now` (ms), as ISO 8601. */
export function sinceOf(range: Range, now: number): string {
  return new Date(now - RANGES[range] * 1000).toISOString()
}
