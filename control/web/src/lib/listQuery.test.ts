import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMIT, EMPTY_QUERY, formatListQuery, pageInfo, parseListQuery, toApiQuery, withFilter } from './listQuery.ts'

describe('list state in the URL', () => {
  it('parses what it formats', () => {
    const query = { q: 'app example', enabled: 'disabled', offset: 50, limit: 25 } as const
    expect(parseListQuery(formatListQuery(query))).toEqual(query)
  })
  it('leaves defaults out of the URL', () => {
    expect(formatListQuery(EMPTY_QUERY)).toBe('')
    expect(formatListQuery({ ...EMPTY_QUERY, q: 'x' })).toBe('?q=x')
  })
  it('cleans up hand-edited URLs', () => {
    expect(parseListQuery('?offset=-5&limit=100000&enabled=maybe&q=' + 'a'.repeat(300))).toEqual({
      q: 'a'.repeat(100),
      enabled: 'all',
      offset: 0,
      limit: 200,
    })
    expect(parseListQuery('?offset=1e3&limit=0')).toMatchObject({ offset: 0, limit: 1 })
  })
  it('a new filter goes back to the first page', () => {
    expect(withFilter({ ...EMPTY_QUERY, offset: 75 }, { q: 'web' })).toEqual({ ...EMPTY_QUERY, q: 'web', offset: 0 })
  })
  it('maps to the API query', () => {
    expect(toApiQuery({ q: '  web ', enabled: 'enabled', offset: 25, limit: 25 })).toEqual({ q: 'web', enabled: true, limit: 25, offset: 25 })
    expect(toApiQuery({ ...EMPTY_QUERY, enabled: 'disabled' })).toEqual({ enabled: false, limit: DEFAULT_LIMIT, offset: 0 })
    expect(toApiQuery(EMPTY_QUERY)).toEqual({ limit: DEFAULT_LIMIT, offset: 0 })
  })
})

describe('pageInfo', () => {
  it('first, middle and last pages', () => {
    expect(pageInfo(60, 0, 25)).toEqual({ from: 1, to: 25, total: 60, prev: null, next: 25 })
    expect(pageInfo(60, 25, 25)).toEqual({ from: 26, to: 50, total: 60, prev: 0, next: 50 })
    expect(pageInfo(60, 50, 25)).toEqual({ from: 51, to: 60, total: 60, prev: 25, next: null })
  })
  it('empty lists and offsets past the end', () => {
    expect(pageInfo(0, 0, 25)).toEqual({ from: 0, to: 0, total: 0, prev: null, next: null })
    expect(pageInfo(10, 40, 25)).toMatchObject({ prev: 15, next: null })
    expect(pageInfo(10, 10, 25).prev).toBe(0)
  })
})
