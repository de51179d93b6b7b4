// Sign-in with an OpenID provider: the button's link, and what a refused sign-in's code means.
// The control plane's callback sends the browser back to /signin?oidc_error=<code> (docs/api.md),
// or, when linking from the profile, to /profile?oidc_linked=<slug> or ?oidc_error=<code>.
import type { MessageKey } from '../i18n/en.ts'

export const OIDC_ERRORS = [
  'state',
  'denied',
  'provider',
  'unavailable',
  'email',
  'domain',
  'linked',
  'link_required',
  'unknown_user',
  'disabled',
  'throttled',
  'conflict',
] as const

/** The message for `?oidc_error=…`: one per known code, a general one for any other. */
export function oidcErrorMessage(code: string | null | undefined): MessageKey | null {
  if (!code) return null
  return (OIDC_ERRORS as readonly string[]).includes(code) ? (`oidc.error.${code}` as MessageKey) : 'oidc.error.other'
}

/** The provider's login URL (a plain navigation to the control plane), with where to land. */
export function providerHref(loginUrl: string, next: string): string {
  return next === '/' ? loginUrl : `${loginUrl}?${new URLSearchParams({ next }).toString()}`
}
