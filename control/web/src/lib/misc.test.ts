import { describe, expect, it } from 'vitest'
import { formatBytes, formatClock, formatNumber, formatRelative } from './format.ts'
import { formatLabels, parseLabels } from './labels.ts'
import { assignableRoles, can, serviceTokenRoles } from './permissions.ts'
import { byAttention, countByStatus } from './status.ts'

describe('permissions (from control/auth/roles.py)', () => {
  it('viewers read, operators change services, admins manage nodes', () => {
    expect(can('viewer', 'services.read')).toBe(true)
    expect(can('viewer', 'services.write')).toBe(false)
    expect(can('operator', 'services.write')).toBe(true)
    expect(can('operator', 'nodes.write')).toBe(false)
    expect(can('admin', 'nodes.write')).toBe(true)
    expect(can('admin', 'owners.manage')).toBe(false)
    expect(can(undefined, 'services.read')).toBe(false)
  })
  it('only owners hand out the owner role; tokens stop at admin', () => {
    expect(assignableRoles('admin')).toEqual(['viewer', 'operator', 'admin'])
    expect(assignableRoles('owner')).toEqual(['viewer', 'operator', 'admin', 'owner'])
    expect(serviceTokenRoles()).toEqual(['viewer', 'operator', 'admin'])
  })
})

describe('labels', () => {
  it('parses lines and commas, reports the bad entries', () => {
    expect(parseLabels('region=tokyo\n tier = edge ,\n\nbroken, Upper=x')).toEqual({
      labels: { region: 'tokyo', tier: 'edge' },
      errors: ['broken', 'Upper=x'],
    })
    expect(parseLabels('empty=')).toEqual({ labels: { empty: '' }, errors: [] })
  })
  it('formats back', () => {
    expect(parseLabels(formatLabels({ a: '1', 'b/c': 'x' })).labels).toEqual({ a: '1', 'b/c': 'x' })
  })
})

describe('status summaries', () => {
  const items = [
    { name: 'b', status: 'online', enabled: true },
    { name: 'a', status: 'offline', enabled: false },
    { name: 'c', status: 'offline', enabled: true },
    { name: 'd', status: 'unknown', enabled: true },
  ] as const
  it('counts by status', () => {
    expect(countByStatus(items)).toEqual({ online: 1, offline: 2, degraded: 0, unknown: 1 })
  })
  it('puts what needs attention first', () => {
    expect(byAttention(items).map((x) => x.name)).toEqual(['c', 'd', 'b', 'a'])
  })
})

describe('formatRelative', () => {
  it('speaks both languages', () => {
    const now = Date.parse('2026-11-28T12:00:00Z')
    expect(formatRelative('2026-11-28T11:55:00Z', 'en', now)).toBe('5 minutes ago')
    expect(formatRelative('2026-11-28T11:55:00Z', 'ja', now)).toBe('5 分前')
    expect(formatRelative(null, 'en', now)).toBe('—')
  })
})

describe('numbers, bytes and clock times', () => {
  it('formats numbers with the decimals their size needs', () => {
    expect([0, 0.1234, 3.456, 12.34, 1234.5].map((v) => formatNumber(v, 'en'))).toEqual(['0', '0.12', '3.46', '12.3', '1,235'])
  })
  it('formats bytes in decimal units', () => {
    expect(formatBytes(0, 'en')).toBe('0 B')
    expect(formatBytes(999, 'en')).toBe('999 B')
    expect(formatBytes(1500, 'en')).toBe('1.5 kB')
    expect(formatBytes(2_345_678, 'ja')).toBe('2.35 MB')
    expect(formatBytes(5e18, 'en')).toBe('5,000 PB')
  })
  it('formats clock times, with the day for long spans', () => {
    const at = Date.UTC(2026, 10, 28, 3, 7)
    expect(formatClock(at, 'en')).toMatch(/\d{2}:07/)
    expect(formatClock(at, 'en', true)).toMatch(/11\/2[78]/)
  })
})
