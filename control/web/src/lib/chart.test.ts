import { describe, expect, it } from 'vitest'
import { frameOf, hasData, layout, niceCeil, polyline, type Series } from './chart.ts'

describe('niceCeil', () => {
  it('rounds up to 1, 2 or 5 × 10ⁿ', () => {
    expect([1, 1.01, 2, 2.1, 4.99, 5, 5.5, 9.2, 10, 11].map(niceCeil)).toEqual([1, 2, 2, 5, 5, 5, 10, 10, 10, 20])
    expect(niceCeil(730)).toBe(1000)
    expect(niceCeil(1234567)).toBe(2000000)
  })
  it('handles small rates without float noise', () => {
    expect(niceCeil(0.033)).toBe(0.05)
    expect(niceCeil(0.3)).toBe(0.5)
    expect(niceCeil(0.15)).toBe(0.2)
    expect(niceCeil(0.0007)).toBe(0.001)
  })
  it('gives 1 for nothing to scale', () => {
    expect(niceCeil(0)).toBe(1)
    expect(niceCeil(-3)).toBe(1)
    expect(niceCeil(Number.NaN)).toBe(1)
    expect(niceCeil(Infinity)).toBe(1)
  })
})

const a: Series = { key: 'a', label: 'a', points: [[0, 0], [10, 3], [20, 4]] }
const b: Series = { key: 'b', label: 'b', points: [[0, 8], [10, 1], [20, 0]] }

describe('chart geometry', () => {
  it('frames all series on one time span and one nice top', () => {
    expect(frameOf([a, b])).toEqual({ t0: 0, t1: 20, top: 10 })
    expect(frameOf([{ key: 'x', label: 'x', points: [] }])).toBeNull()
    // all zero: the top is 1, so a flat line sits on the bottom edge
    expect(frameOf([{ key: 'z', label: 'z', points: [[0, 0], [5, 0]] }])).toEqual({ t0: 0, t1: 5, top: 1 })
  })
  it('scales points into the box, y downwards', () => {
    const frame = { t0: 0, t1: 20, top: 10 }
    expect(polyline(a.points, frame, 100, 50)).toBe('0,50 50,35 100,30')
    expect(polyline(b.points, frame, 100, 50)).toBe('0,10 50,45 100,50')
    expect(polyline([], frame, 100, 50)).toBe('')
  })
  it('clamps values outside 0..top and copes with a single time', () => {
    expect(polyline([[0, -5], [20, 50]], { t0: 0, t1: 20, top: 10 }, 100, 50)).toBe('0,50 100,0')
    expect(polyline([[7, 5]], { t0: 7, t1: 7, top: 10 }, 100, 50)).toBe('0,25')
  })
  it('draws the step in progress as a separate tail', () => {
    const drawn = layout([a], 100, 50, true)
    expect(drawn?.frame.top).toBe(5)
    expect(drawn?.lines).toEqual([{ key: 'a', label: 'a', solid: '0,50 50,20', tail: '50,20 100,10' }])
    expect(layout([a], 100, 50, false)?.lines[0]?.tail).toBe('')
    expect(layout([], 100, 50, true)).toBeNull()
  })
  it('knows when there is nothing to draw', () => {
    expect(hasData(null)).toBe(false)
    expect(hasData([{ key: 'x', label: 'x', points: [] }])).toBe(false)
    expect(hasData([{ key: 'x', label: 'x', points: [[1, 2]] }])).toBe(true)
  })
})
