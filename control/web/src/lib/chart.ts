// Geometry of the small line charts (requests/s, bandwidth): series of (time, value) points →
// SVG polylines in a width × height box (y grows downwards), on a shared time span and a
// "nice" top value so that every series of a chart is drawn to the same scale.

export type Point = readonly [time: number, value: number]

export interface Series {
  key: string
  label: string
  points: readonly Point[]
}

/** What the axes span: times t0..t1, values 0..top. */
export interface Frame {
  t0: number
  t1: number
  top: number
}

export interface Line {
  key: string
  label: string
  /** the complete steps, as "x,y x,y …" */
  solid: string
  /** the last segment, into the step still in progress ("" when there is none) */
  tail: string
}

/** The smallest 1, 2 or 5 × 10ⁿ that is at least `value`; 1 for zero, negatives or NaN. */
export function niceCeil(value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) return 1
  const base = 10 ** Math.floor(Math.log10(value))
  for (const m of [1, 2, 5, 10]) {
    const candidate = Number((m * base).toPrecision(12))
    if (candidate >= value) return candidate
  }
  return Number((10 * base).toPrecision(12))
}

/** The time span of all points and the nice top of their values; null without points. */
export function frameOf(series: readonly Series[]): Frame | null {
  let t0 = Infinity
  let t1 = -Infinity
  let max = 0
  for (const s of series) {
    for (const [t, v] of s.points) {
      t0 = Math.min(t0, t)
      t1 = Math.max(t1, t)
      if (Number.isFinite(v)) max = Math.max(max, v)
    }
  }
  return t0 === Infinity ? null : { t0, t1, top: niceCeil(max) }
}

/** "x,y x,y …" for `points` in `frame`, scaled into width × height; "" without points.
 * Values below 0 sit on the bottom edge, above the top on the top edge. */
export function polyline(points: readonly Point[], frame: Frame, width: number, height: number): string {
  const span = frame.t1 - frame.t0 || 1
  return points
    .map(([t, v]) => {
      const x = ((t - frame.t0) / span) * width
      const share = Math.min(1, Math.max(0, (Number.isFinite(v) ? v : 0) / frame.top))
      return `${round(x)},${round(height - share * height)}`
    })
    .join(' ')
}

/** Every series as a solid line over its complete points and, when the last point is the
 * step still in progress (`partialLast`), a separate tail into it. */
export function layout(series: readonly Series[], width: number, height: number, partialLast: boolean): { frame: Frame; lines: Line[] } | null {
  const frame = frameOf(series)
  if (!frame) return null
  const lines = series.map((s) => {
    const cut = partialLast && s.points.length >= 2 ? s.points.length - 1 : s.points.length
    return {
      key: s.key,
      label: s.label,
      solid: polyline(s.points.slice(0, cut), frame, width, height),
      tail: cut < s.points.length ? polyline(s.points.slice(cut - 1), frame, width, height) : '',
    }
  })
  return { frame, lines }
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}

export function hasData(series: readonly Series[] | null | undefined): series is readonly Series[] {
  return !!series && series.some((s) => s.points.length > 0)
}
