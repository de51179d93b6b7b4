// Public (HTTPS) certificates: how close each is to expiring, which need attention, the list's
// search and filter (in the URL), and which services' host names a certificate serves.
import type { components } from '../api/schema'
import type { MessageKey } from '../i18n/en.ts'
import type { Locale } from '../i18n/i18n.ts'

export type Certificate = components['schemas']['CertificateOut']
export type CertificateIn = components['schemas']['CertificateIn']

/** Certificates that expire within this many days are alerts (and marked in the list). */
export const EXPIRY_WARNING_DAYS = 14
const DAY_MS = 86_400_000

/** expired: past not_after; expiring: within EXPIRY_WARNING_DAYS; pending: not valid yet
 * (a renewal uploaded ahead of time); valid: the rest. */
export type ExpiryState = 'expired' | 'expiring' | 'pending' | 'valid'

export interface Expiry {
  state: ExpiryState
  /** whole days left until not_after (expired: whole days since it) */
  days: number
}

function time(iso: string): number {
  const ms = new Date(iso).getTime()
  return Number.isNaN(ms) ? 0 : ms // an unreadable date counts as long expired: it is looked at
}

export function expiryOf(cert: Pick<Certificate, 'not_before' | 'not_after'>, now: number = Date.now()): Expiry {
  const end = time(cert.not_after)
  if (end <= now) return { state: 'expired', days: Math.floor((now - end) / DAY_MS) }
  const left = end - now
  const days = Math.floor(left / DAY_MS)
  if (left < EXPIRY_WARNING_DAYS * DAY_MS) return { state: 'expiring', days }
  return { state: now < time(cert.not_before) ? 'pending' : 'valid', days }
}

export function needsAttention(expiry: Expiry): boolean {
  return expiry.state === 'expired' || expiry.state === 'expiring'
}

/** What to say about an expiry: "Expires in 89 days", "Expires within a day", "Expired 3 days
 * ago", "Not valid yet"; `days` goes in as a number of days in the reader's language. */
export function expiryMessage(expiry: Expiry): { key: MessageKey; days: number } {
  const { state, days } = expiry
  if (state === 'expired') return { key: days === 0 ? 'expiry.expiredToday' : 'expiry.expired', days }
  if (state === 'expiring') return { key: days === 0 ? 'expiry.expiringToday' : 'expiry.expiring', days }
  return { key: state === 'pending' ? 'expiry.pending' : 'expiry.valid', days }
}

/** "89 days" / "89 日" */
export function formatDays(days: number, locale: Locale): string {
  return new Intl.NumberFormat(locale, { style: 'unit', unit: 'day', unitDisplay: 'long' }).format(days)
}

export interface CertificateAlert {
  id: string
  name: string
  names: string[]
  notAfter: string
  expiry: Expiry
}

/** The name a certificate goes by: its first DNS name (they are sorted), else its subject. */
export function certificateName(cert: Pick<Certificate, 'names' | 'subject'>): string {
  return cert.names[0] ?? cert.subject
}

/** Certificates expired or expiring within EXPIRY_WARNING_DAYS: expired first, then the
 * soonest to expire, then by name. */
export function certificateAlerts(certs: readonly Certificate[], now: number = Date.now()): CertificateAlert[] {
  const alerts: CertificateAlert[] = []
  for (const cert of certs) {
    const expiry = expiryOf(cert, now)
    if (needsAttention(expiry)) alerts.push({ id: cert.id, name: certificateName(cert), names: cert.names, notAfter: cert.not_after, expiry })
  }
  return alerts.sort((a, b) => time(a.notAfter) - time(b.notAfter) || a.name.localeCompare(b.name))
}

// ---- the list's search and filter, kept in the URL ------------------------------------------

export type ExpiryFilter = 'all' | 'attention' | 'expired' | 'valid'
const FILTERS: readonly ExpiryFilter[] = ['all', 'attention', 'expired', 'valid']

export interface CertificateQuery {
  q: string
  expiry: ExpiryFilter
}

export function parseCertificateQuery(search: string): CertificateQuery {
  const p = new URLSearchParams(search)
  const expiry = p.get('expiry')
  return {
    q: (p.get('q') ?? '').slice(0, 100),
    expiry: FILTERS.includes(expiry as ExpiryFilter) ? (expiry as ExpiryFilter) : 'all',
  }
}

/** The query string (defaults left out), with a leading "?" or empty. */
export function formatCertificateQuery(query: CertificateQuery): string {
  const p = new URLSearchParams()
  if (query.q) p.set('q', query.q)
  if (query.expiry !== 'all') p.set('expiry', query.expiry)
  const text = p.toString()
  return text ? `?${text}` : ''
}

function matchesExpiry(filter: ExpiryFilter, expiry: Expiry): boolean {
  switch (filter) {
    case 'all':
      return true
    case 'attention':
      return needsAttention(expiry)
    case 'expired':
      return expiry.state === 'expired'
    case 'valid':
      return !needsAttention(expiry)
  }
}

/** The certificates whose names, subject, issuer, serial or fingerprint contain the search text
 * (any case), in the chosen expiry state; in the API's order (the soonest to expire first). */
export function filterCertificates(certs: readonly Certificate[], query: CertificateQuery, now: number = Date.now()): Certificate[] {
  const q = query.q.trim().toLowerCase()
  return certs.filter((c) => {
    if (!matchesExpiry(query.expiry, expiryOf(c, now))) return false
    if (!q) return true
    return [...c.names, c.subject, c.issuer, c.serial, c.fingerprint].some((text) => text.toLowerCase().includes(q))
  })
}

// ---- which services it serves ---------------------------------------------------------------

/** Whether certificate name `name` covers a name that a service on `host` receives, as the
 * control plane decides which certificates a node gets (control/services/public_tls.py
 * `serves`): an exact host by the same name or a one-label wildcard (`*.example.com` covers
 * `a.example.com`, not `example.com` nor `a.b.example.com`); a wildcard host `*.example.com`
 * by any name below example.com. */
export function serves(name: string, host: string): boolean {
  const n = name.toLowerCase()
  const h = host.toLowerCase()
  if (h.startsWith('*.')) return n.endsWith(h.slice(1))
  if (n === h) return true
  if (!n.startsWith('*.')) return false
  const dot = h.indexOf('.')
  return dot > 0 && h.slice(dot + 1) === n.slice(2)
}

/** The services with a host name one of `names` serves, by name. */
export function servicesServed<S extends { hostname: string; name: string }>(names: readonly string[], services: readonly S[]): S[] {
  return services.filter((s) => names.some((n) => serves(n, s.hostname))).sort((a, b) => a.name.localeCompare(b.name))
}

// ---- reading a PEM file ---------------------------------------------------------------------

/** Larger files are refused before reading: a chain is at most 16,384 characters, a key 8,192. */
export const MAX_PEM_FILE_BYTES = 65_536
