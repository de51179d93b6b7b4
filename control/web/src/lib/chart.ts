// Geometry of the small line charts (requests/s, bandwidth): points → an SVG polyline.

export type Point = readonly [time: number, value: number]

export interface Series {
  label: string
  points: readonly Point[]
}

/** "x,y x,y …" scaled into a width × height box (y grows downwards); "" without data. */
export function polyline(points: readonly Point[], width: number, height: number): string {
  if (points.length === 0) return ''
  const times = points.map((p) => p[0])
  const t0 = Math.min(...times)
  const span = Math.max(...times) - t0 || 1
  const top = Math.max(...points.map((p) => p[1])) || 1
  return points
    .map(([t, v]) => {
      const x = ((t - t0) / span) * width
      const y = height - (Math.max(0, v) / top) * height
      return `${round(x)},${round(y)}`
    })
    .join(' ')
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}

export function hasData(series: readonly Series[] | null | undefined): series is readonly Series[] {
  return !!series && series.some((s) => s.points.length > 0)
}
