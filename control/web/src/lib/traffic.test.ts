import { describe, expect, it } from 'vitest'
import type { Traffic, TrafficPoint } from '../api/types.ts'
import { parseRange, perSecond, rateSeries, sinceOf, summarise, withRange } from './traffic.ts'

function point(at: string, requests: number, bytes_out = requests * 1000): TrafficPoint {
  return { at, requests, bytes_out, bytes_in: 0, errors: 0, max_in_flight: 0 }
}

const traffic: Traffic = {
  by: 'service',
  source: 'ingress',
  since: '2026-11-28T12:00:00Z',
  until: '2026-11-28T12:01:30Z',
  step: 30,
  total: 2,
  series: [
    { id: 's1', name: 'web', requests: 96, points: [point('2026-11-28T12:00:00Z', 60), point('2026-11-28T12:00:30Z', 30), point('2026-11-28T12:01:00Z', 6)] },
    { id: 's2', name: 'api', requests: 3, points: [point('2026-11-28T12:00:00Z', 0), point('2026-11-28T12:00:30Z', 0), point('2026-11-28T12:01:00Z', 3)] },
  ],
}

describe('rates from bucket counts', () => {
  it('divides a step’s count by its seconds', () => {
    expect(perSecond(60, 30)).toBe(2)
    expect(perSecond(5, 0)).toBe(0)
  })
  it('turns series into (ms, per second) points', () => {
    const [web] = rateSeries(traffic, 'requests')
    expect(web?.label).toBe('web')
    expect(web?.points).toEqual([
      [Date.parse('2026-11-28T12:00:00Z'), 2],
      [Date.parse('2026-11-28T12:00:30Z'), 1],
      [Date.parse('2026-11-28T12:01:00Z'), 0.2],
    ])
    expect(rateSeries(traffic, 'bandwidth')[0]?.points[0]?.[1]).toBe(2000)
  })
  it('summarises: latest complete step, peak, total', () => {
    expect(summarise(traffic, 'requests')).toEqual([
      { key: 's1', label: 'web', latest: 1, peak: 2, total: 96 },
      // its only traffic is in the step still in progress: 0 as latest, but in peak and total
      { key: 's2', label: 'api', latest: 0, peak: 0.1, total: 3 },
    ])
    expect(summarise(traffic, 'bandwidth')[0]).toMatchObject({ latest: 1000, total: 96000 })
    const single = { ...traffic, series: [{ id: 'x', name: 'x', requests: 1, points: [point('2026-11-28T12:00:00Z', 1)] }] }
    expect(summarise(single, 'requests')[0]?.latest).toBeNull()
  })
})

describe('time ranges', () => {
  it('reads and writes ?range=, keeping other parameters', () => {
    expect(parseRange('')).toBe('1h')
    expect(parseRange('?range=6h')).toBe('6h')
    expect(parseRange('?range=toString')).toBe('1h')
    expect(withRange('?subject=x', '24h')).toBe('?subject=x&range=24h')
    expect(withRange('?range=24h', '1h')).toBe('')
  })
  it('computes since', () => {
    expect(sinceOf('15m', Date.parse('2026-11-28T12:00:00Z'))).toBe('2026-11-28T11:45:00.000Z')
  })
})
