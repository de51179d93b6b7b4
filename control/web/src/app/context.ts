// What every page may ask for: the API, the language, the signed-in user, navigation.
import { createContext } from 'preact'
import { useContext } from 'preact/hooks'
import type { Api } from '../api/client.ts'
import type { Me, Membership, Role, SessionInfo } from '../api/types.ts'
import type { Locale, Translate } from '../i18n/i18n.ts'

export interface Location {
  path: string
  search: string
  hash: string
  /** set once the app itself has moved (a link, a redirect, back/forward); not on the first
   * page load, where focus stays at the top of the document */
  navigated?: boolean
}

export interface NavigateOptions {
  replace?: boolean
}

export interface AppContextValue {
  api: Api
  locale: Locale
  setLocale(locale: Locale): void
  t: Translate
  /** A key that may be missing (problem types, audit actions): `fallback` then. */
  optional(key: string, fallback: string): string
  me: Me | null
  signedIn(info: SessionInfo): Promise<void>
  refreshMe(): Promise<void>
  refreshSession(): Promise<void>
  signOut(): Promise<void>
  location: Location
  navigate(to: string, options?: NavigateOptions): void
  notify(message: string): void
}

export const AppContext = createContext<AppContextValue | null>(null)

export function useApp(): AppContextValue {
  const value = useContext(AppContext)
  if (!value) throw new Error('useApp outside <AppContext.Provider>')
  return value
}

export interface OrgContextValue {
  id: string
  name: string
  role: Role
}

export const OrgContext = createContext<OrgContextValue | null>(null)

export function useOrg(): OrgContextValue {
  const value = useContext(OrgContext)
  if (!value) throw new Error('useOrg outside an organisation page')
  return value
}

export function membershipOf(me: Me | null, org: string): Membership | undefined {
  return me?.memberships.find((m) => m.org_id === org)
}
