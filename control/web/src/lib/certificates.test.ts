import { describe, expect, it } from 'vitest'
import {
  certificateAlerts,
  expiryMessage,
  expiryOf,
  formatDays,
  filterCertificates,
  formatCertificateQuery,
  parseCertificateQuery,
  servicesServed,
  serves,
  type Certificate,
} from './certificates.ts'

const NOW = Date.parse('2026-12-07T12:00:00Z')
const DAY = 86_400_000
const iso = (ms: number) => new Date(ms).toISOString()

function cert(id: string, names: string[], notAfter: number, extra: Partial<Certificate> = {}): Certificate {
  return {
    id,
    org_id: 'org',
    names,
    subject: `CN=${names[0] ?? id}`,
    issuer: 'CN=Test CA',
    serial: 'abc123',
    fingerprint: `ff${id}`,
    key_type: 'ec-p256',
    not_before: iso(NOW - 30 * DAY),
    not_after: iso(notAfter),
    chain: '-----BEGIN CERTIFICATE-----',
    created_at: iso(NOW - DAY),
    updated_at: iso(NOW - DAY),
    ...extra,
  }
}

describe('expiryOf', () => {
  const at = (notAfter: number, notBefore = NOW - DAY) => expiryOf({ not_before: iso(notBefore), not_after: iso(notAfter) }, NOW)
  it('counts whole days left', () => {
    expect(at(NOW + 90 * DAY - 1000)).toEqual({ state: 'valid', days: 89 })
    expect(at(NOW + 14 * DAY)).toEqual({ state: 'valid', days: 14 })
  })
  it('is expiring within 14 days, down to the last second', () => {
    expect(at(NOW + 14 * DAY - 1)).toEqual({ state: 'expiring', days: 13 })
    expect(at(NOW + 5 * 3600_000)).toEqual({ state: 'expiring', days: 0 })
    expect(at(NOW + 1)).toEqual({ state: 'expiring', days: 0 })
  })
  it('is expired at not_after, counting days since', () => {
    expect(at(NOW)).toEqual({ state: 'expired', days: 0 })
    expect(at(NOW - 3 * DAY - 1)).toEqual({ state: 'expired', days: 3 })
  })
  it('is pending before not_before, unless it expires soon anyway', () => {
    expect(at(NOW + 60 * DAY, NOW + DAY)).toEqual({ state: 'pending', days: 60 })
    expect(at(NOW + 2 * DAY, NOW + DAY)).toEqual({ state: 'expiring', days: 2 })
  })
  it('treats an unreadable date as expired (looked at, not hidden)', () => {
    expect(expiryOf({ not_before: 'x', not_after: 'nonsense' }, NOW).state).toBe('expired')
  })
})

describe('expiryMessage', () => {
  it('says days left, within a day, days since, or not valid yet', () => {
    expect(expiryMessage({ state: 'valid', days: 89 })).toEqual({ key: 'expiry.valid', days: 89 })
    expect(expiryMessage({ state: 'expiring', days: 3 })).toEqual({ key: 'expiry.expiring', days: 3 })
    expect(expiryMessage({ state: 'expiring', days: 0 })).toEqual({ key: 'expiry.expiringToday', days: 0 })
    expect(expiryMessage({ state: 'expired', days: 0 }).key).toBe('expiry.expiredToday')
    expect(expiryMessage({ state: 'expired', days: 2 })).toEqual({ key: 'expiry.expired', days: 2 })
    expect(expiryMessage({ state: 'pending', days: 60 }).key).toBe('expiry.pending')
  })
  it('formats days in the language', () => {
    expect(formatDays(1, 'en')).toBe('1 day')
    expect(formatDays(89, 'en')).toBe('89 days')
    expect(formatDays(89, 'ja')).toMatch(/^89\s?日$/)
  })
})

describe('certificateAlerts', () => {
  it('selects expired and expiring ones, the soonest first', () => {
    const certs = [
      cert('a', ['fine.example.com'], NOW + 60 * DAY),
      cert('b', ['soon.example.com'], NOW + 10 * DAY),
      cert('c', ['gone.example.com'], NOW - 2 * DAY),
      cert('d', ['edge.example.com'], NOW + 14 * DAY + 1),
      cert('e', ['sooner.example.com'], NOW + DAY),
    ]
    const alerts = certificateAlerts(certs, NOW)
    expect(alerts.map((a) => [a.name, a.expiry.state, a.expiry.days])).toEqual([
      ['gone.example.com', 'expired', 2],
      ['sooner.example.com', 'expiring', 1],
      ['soon.example.com', 'expiring', 10],
    ])
    expect(certificateAlerts([], NOW)).toEqual([])
  })
  it('names a certificate without DNS names by its subject', () => {
    expect(certificateAlerts([cert('x', [], NOW - DAY)], NOW)[0]?.name).toBe('CN=x')
  })
})

describe('the list query', () => {
  it('round-trips through the URL, defaults left out', () => {
    const q = parseCertificateQuery('?q=shop&expiry=attention')
    expect(q).toEqual({ q: 'shop', expiry: 'attention' })
    expect(formatCertificateQuery(q)).toBe('?q=shop&expiry=attention')
    expect(formatCertificateQuery({ q: '', expiry: 'all' })).toBe('')
    expect(parseCertificateQuery('?expiry=bogus')).toEqual({ q: '', expiry: 'all' })
  })
  it('filters by text (names, issuer, fingerprint) and expiry state', () => {
    const certs = [
      cert('1', ['www.example.com', 'example.com'], NOW + 60 * DAY),
      cert('2', ['shop.example.net'], NOW + 3 * DAY, { issuer: 'CN=Other CA' }),
      cert('3', ['old.example.org'], NOW - DAY),
    ]
    const ids = (q: string, expiry: 'all' | 'attention' | 'expired' | 'valid') => filterCertificates(certs, { q, expiry }, NOW).map((c) => c.id)
    expect(ids('', 'all')).toEqual(['1', '2', '3'])
    expect(ids('EXAMPLE.COM', 'all')).toEqual(['1'])
    expect(ids('other ca', 'all')).toEqual(['2'])
    expect(ids('ff3', 'all')).toEqual(['3'])
    expect(ids('', 'attention')).toEqual(['2', '3'])
    expect(ids('', 'expired')).toEqual(['3'])
    expect(ids('', 'valid')).toEqual(['1'])
    expect(ids('shop', 'valid')).toEqual([])
  })
})

describe('serves (as control/services/public_tls.py)', () => {
  it.each([
    ['app.example.com', 'app.example.com', true],
    ['APP.example.com', 'app.example.COM', true],
    ['*.example.com', 'app.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.b.example.com', false],
    ['app.example.com', 'api.example.com', false],
    ['*.example.com', '*.example.com', true],
    ['a.example.com', '*.example.com', true],
    ['*.b.example.com', '*.example.com', true],
    ['example.com', '*.example.com', false],
    ['*.example.com', '*.b.example.com', false],
  ])('%s for a service on %s: %s', (name, host, expected) => {
    expect(serves(name, host)).toBe(expected)
  })
  it('lists the services served, by name', () => {
    const services = [
      { name: 'web', hostname: 'www.example.com' },
      { name: 'api', hostname: 'api.example.com' },
      { name: 'other', hostname: 'example.net' },
    ]
    expect(servicesServed(['*.example.com'], services).map((s) => s.name)).toEqual(['api', 'web'])
    expect(servicesServed([], services)).toEqual([])
  })
})
