// Dates and durations in the reader's language.
import type { Locale } from '../i18n/i18n.ts'

export function formatDateTime(iso: string | null | undefined, locale: Locale): string {
  if (!iso) return '—'
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' }).format(date)
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
]

/** "5 minutes ago" / "5 分前"; `now` is injectable for tests. */
export function formatRelative(iso: string | null | undefined, locale: Locale, now = Date.now()): string {
  if (!iso) return '—'
  const then = new Date(iso).getTime()
  if (Number.isNaN(then)) return iso
  const seconds = Math.round((then - now) / 1000)
  const fmt = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') return fmt.format(Math.trunc(seconds / size), unit)
  }
  return fmt.format(0, 'second')
}

/** A number with as many decimals as its size needs: 1234 → "1,234", 12.34 → "12.3",
 * 0.1234 → "0.12" (in the reader's digits and separators). */
export function formatNumber(value: number, locale: Locale): string {
  const size = Math.abs(value)
  const digits = size >= 100 || size === 0 ? 0 : size >= 10 ? 1 : 2
  return new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(value)
}

const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const

/** Bytes in decimal units: 1500 → "1.5 kB". */
export function formatBytes(bytes: number, locale: Locale): string {
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000
    unit += 1
  }
  return `${formatNumber(value, locale)} ${BYTE_UNITS[unit]}`
}

/** Hours and minutes, with the day when the span is longer than a day. */
export function formatClock(ms: number, locale: Locale, withDay = false): string {
  const options: Intl.DateTimeFormatOptions = withDay
    ? { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }
    : { hour: '2-digit', minute: '2-digit' }
  return new Intl.DateTimeFormat(locale, options).format(new Date(ms))
}
