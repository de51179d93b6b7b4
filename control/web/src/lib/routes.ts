// Path patterns ("/orgs/:org/services/:id") matched against location.pathname, and the
// rules for which link clicks the app handles itself (history.pushState, no page load).

export type Params = Record<string, string>

export function matchPath(pattern: string, path: string): Params | null {
  const want = pattern.split('/').filter(Boolean)
  const got = path.split('/').filter(Boolean)
  if (want.length !== got.length) return null
  const params: Params = {}
  for (const [i, part] of want.entries()) {
    const value = got[i] as string
    if (part.startsWith(':')) {
      try {
        params[part.slice(1)] = decodeURIComponent(value)
      } catch {
        return null
      }
    } else if (part !== value) {
      return null
    }
  }
  return params
}

export interface Matched<R> {
  route: R
  params: Params
}

export function resolve<R extends { path: string }>(routes: readonly R[], path: string): Matched<R> | null {
  for (const route of routes) {
    const params = matchPath(route.path, path)
    if (params) return { route, params }
  }
  return null
}

interface ClickLike {
  button: number
  metaKey: boolean
  ctrlKey: boolean
  shiftKey: boolean
  altKey: boolean
  defaultPrevented: boolean
}

/** A plain left click on a same-origin link without target or download: ours to route. */
export function shouldRouteClick(event: ClickLike, anchor: { target: string; hasAttribute(n: string): boolean; origin: string }, origin: string): boolean {
  if (event.defaultPrevented || event.button !== 0) return false
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false
  if (anchor.target && anchor.target !== '_self') return false
  if (anchor.hasAttribute('download')) return false
  return anchor.origin === origin
}

/** Where to go after signing in: only a path of this site (no "//evil.example", no URL). */
export function safeNext(next: string | null | undefined, fallback = '/'): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) {
    return fallback
  }
  return next
}

export function orgPath(org: string, ...rest: string[]): string {
  return ['', 'orgs', encodeURIComponent(org), ...rest.map(encodeURIComponent)].join('/')
}
