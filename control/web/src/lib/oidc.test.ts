import { describe, expect, it } from 'vitest'
import { en } from '../i18n/en.ts'
import { OIDC_ERRORS, oidcErrorMessage, providerHref } from './oidc.ts'

describe('oidcErrorMessage', () => {
  it('has a message for every code the callback sends', () => {
    for (const code of OIDC_ERRORS) {
      const key = oidcErrorMessage(code)
      expect(key).toBe(`oidc.error.${code}`)
      expect(en[key as keyof typeof en], code).toBeTruthy()
    }
  })
  it('says something general for a code it does not know, nothing without one', () => {
    expect(oidcErrorMessage('something_new')).toBe('oidc.error.other')
    expect(oidcErrorMessage('__proto__')).toBe('oidc.error.other')
    expect(oidcErrorMessage(null)).toBeNull()
    expect(oidcErrorMessage('')).toBeNull()
  })
})

describe('providerHref', () => {
  it('carries where to land, encoded', () => {
    const login = '/api/v1/auth/oidc/corp/login'
    expect(providerHref(login, '/')).toBe(login)
    expect(providerHref(login, '/orgs/a b/services?q=x&y=1')).toBe(
      `${login}?next=%2Forgs%2Fa+b%2Fservices%3Fq%3Dx%26y%3D1`,
    )
  })
})
