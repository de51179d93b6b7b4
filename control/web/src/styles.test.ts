// The colour pairs the stylesheet uses for text meet WCAG AA (4.5:1) in both schemes.
import { describe, expect, it } from 'vitest'
import css from './styles.css?raw'

// [text colour, background] as used in styles.css.
const PAIRS: [string, string][] = [
  ['text', 'bg'],
  ['text', 'surface'],
  ['muted', 'bg'],
  ['muted', 'surface'],
  ['muted', 'idle-bg'],
  ['link', 'bg'],
  ['link', 'surface'],
  ['brand-text', 'brand'],
  ['surface', 'bad'],
  ['bad', 'surface'],
  ['ok', 'ok-bg'],
  ['warn', 'warn-bg'],
  ['bad', 'bad-bg'],
  ['idle', 'idle-bg'],
  ['text', 'warn-bg'],
  ['text', 'bad-bg'],
  ['bg', 'text'],
]

function variables(block: string): Record<string, string> {
  return Object.fromEntries([...block.matchAll(/--([\w-]+):\s*(#[0-9a-f]{6})/g)].map((m) => [m[1], m[2]]))
}

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  }) as [number, number, number]
  return 0.2126 * r + 0.7152 * g + 0.0722 * b
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number]
  return (hi + 0.05) / (lo + 0.05)
}

const light = variables(css.slice(css.indexOf(':root {'), css.indexOf('}', css.indexOf(':root {'))))
const darkStart = css.indexOf(':root {', css.indexOf('prefers-color-scheme: dark'))
const dark = variables(css.slice(darkStart, css.indexOf('}', darkStart)))

// Chart lines and the alert borders against the panels they are drawn on: non-text graphics
// need 3:1 (WCAG 1.4.11).
const GRAPHICS: [string, string][] = [
  ['brand', 'surface'],
  ['focus', 'surface'],
  ['ok', 'surface'],
  ['warn', 'surface'],
  ['bad', 'surface'],
]

describe('colour contrast', () => {
  it('computes the WCAG ratio', () => {
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21)
  })
  for (const [name, scheme] of [['light', light], ['dark', dark]] as const) {
    it(`meets 4.5:1 in the ${name} scheme`, () => {
      const low = PAIRS.filter(([fg, bg]) => contrast(scheme[fg] as string, scheme[bg] as string) < 4.5)
      expect(Object.keys(scheme).length).toBeGreaterThan(15)
      expect(low).toEqual([])
    })
    it(`chart lines meet 3:1 in the ${name} scheme`, () => {
      const low = GRAPHICS.filter(([fg, bg]) => contrast(scheme[fg] as string, scheme[bg] as string) < 3)
      expect(low).toEqual([])
    })
  }
})
