import { describe, expect, it } from 'vitest'
import { ROUTES } from '../app/routes.ts'
import { matchPath, orgPath, resolve, safeNext, shouldRouteClick } from './routes.ts'

describe('matchPath', () => {
  it('extracts parameters', () => {
    expect(matchPath('/orgs/:org/services/:id', '/orgs/o1/services/s%201')).toEqual({ org: 'o1', id: 's 1' })
    expect(matchPath('/orgs/:org', '/orgs/o1/')).toEqual({ org: 'o1' })
  })
  it('refuses other shapes and broken escapes', () => {
    expect(matchPath('/orgs/:org', '/orgs/o1/services')).toBeNull()
    expect(matchPath('/orgs/:org/nodes', '/orgs/o1/agents')).toBeNull()
    expect(matchPath('/orgs/:org', '/orgs/%E0%A4%A')).toBeNull()
  })
})

describe('the route table', () => {
  it('sends fixed paths before parameters', () => {
    expect(resolve(ROUTES, '/orgs/new')?.route.access).toBe('user')
    expect(resolve(ROUTES, '/orgs/o1/services/new')?.route.path).toBe('/orgs/:org/services/new')
    expect(resolve(ROUTES, '/orgs/o1/services/abc')?.params).toEqual({ org: 'o1', id: 'abc' })
    expect(resolve(ROUTES, '/nowhere')).toBeNull()
  })
  it('has one entry per path', () => {
    expect(new Set(ROUTES.map((r) => r.path)).size).toBe(ROUTES.length)
  })
})

describe('safeNext', () => {
  it('allows only paths of this site', () => {
    expect(safeNext('/orgs/o1/services?q=x#y')).toBe('/orgs/o1/services?q=x#y')
    for (const bad of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', '', null]) {
      expect(safeNext(bad), String(bad)).toBe('/')
    }
  })
})

describe('shouldRouteClick', () => {
  const click = { button: 0, metaKey: false, ctrlKey: false, shiftKey: false, altKey: false, defaultPrevented: false }
  const anchor = (extra: Partial<{ target: string; download: boolean; origin: string }> = {}) => ({
    target: extra.target ?? '',
    origin: extra.origin ?? 'https://k.test',
    hasAttribute: (name: string) => name === 'download' && !!extra.download,
  })
  it('routes a plain click on our own link', () => {
    expect(shouldRouteClick(click, anchor(), 'https://k.test')).toBe(true)
  })
  it('leaves new tabs, downloads and other sites to the browser', () => {
    expect(shouldRouteClick({ ...click, ctrlKey: true }, anchor(), 'https://k.test')).toBe(false)
    expect(shouldRouteClick({ ...click, button: 1 }, anchor(), 'https://k.test')).toBe(false)
    expect(shouldRouteClick(click, anchor({ target: '_blank' }), 'https://k.test')).toBe(false)
    expect(shouldRouteClick(click, anchor({ download: true }), 'https://k.test')).toBe(false)
    expect(shouldRouteClick(click, anchor({ origin: 'https://other.test' }), 'https://k.test')).toBe(false)
  })
})

describe('orgPath', () => {
  it('escapes each part', () => {
    expect(orgPath('o/1', 'services', 'a b')).toBe('/orgs/o%2F1/services/a%20b')
  })
})
