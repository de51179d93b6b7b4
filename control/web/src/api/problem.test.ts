import { describe, expect, it } from 'vitest'
import { translator, lookupOptional, DICTIONARIES } from '../i18n/i18n.ts'
import { ApiError, describe as describeError, fieldErrors, isProblem } from './problem.ts'

const lookups = (locale: 'en' | 'ja') => ({
  t: translator(locale),
  optional: (key: string, fallback: string) => lookupOptional(DICTIONARIES, locale, key, fallback),
})

const forbidden = new ApiError(403, {
  type: 'urn:kokoa:problem:forbidden',
  title: 'Your role does not allow this',
  status: 403,
  detail: 'this needs the operator role (you are viewer)',
})

describe('describe', () => {
  it('shows the translated title and the server detail', () => {
    expect(describeError(forbidden, lookups('ja'))).toEqual({
      title: 'あなたのロールではこの操作はできません',
      detail: 'this needs the operator role (you are viewer)',
    })
  })
  it('uses the server title for a problem type we do not know', () => {
    const error = new ApiError(418, { type: 'urn:kokoa:problem:teapot', title: 'I am a teapot', status: 418, detail: 'short and stout' })
    expect(describeError(error, lookups('en'))).toEqual({ title: 'I am a teapot', detail: 'short and stout' })
  })
  it('still says something when the body was not problem+json', () => {
    expect(describeError(new ApiError(502, null), lookups('en'))).toEqual({ title: 'Request failed: HTTP 502', detail: null })
  })
  it('tells a network failure apart', () => {
    const text = describeError(ApiError.network(new TypeError('Failed to fetch')), lookups('en'))
    expect(text.title).toMatch(/Cannot reach the control plane/)
  })
  it('turns a bug into a message, never a blank', () => {
    expect(describeError(new TypeError('x is undefined'), lookups('en'))).toEqual({
      title: 'Something went wrong in the app.',
      detail: 'x is undefined',
    })
  })
})

describe('fieldErrors', () => {
  it('maps body validation errors to fields, first one wins', () => {
    const error = new ApiError(422, {
      type: 'urn:kokoa:problem:validation-error',
      title: 'Invalid request',
      status: 422,
      detail: 'body.hostname: expected a host name',
      errors: [
        { loc: ['body', 'hostname'], msg: 'expected a host name', type: 'string_pattern_mismatch' },
        { loc: ['body', 'hostname'], msg: 'second', type: 'x' },
        { loc: ['body', 'agent_ids', 0], msg: 'not a uuid', type: 'uuid_parsing' },
        { loc: ['query', 'limit'], msg: 'ignored', type: 'x' },
      ],
    })
    expect(fieldErrors(error)).toEqual({ hostname: 'expected a host name', agent_ids: 'not a uuid' })
  })
  it('is empty for anything else', () => {
    expect(fieldErrors(forbidden)).toEqual({})
    expect(fieldErrors(new Error('x'))).toEqual({})
  })
})

describe('isProblem', () => {
  it('needs a detail and a status', () => {
    expect(isProblem({ detail: 'x', status: 400 })).toBe(true)
    expect(isProblem({ detail: 'x' })).toBe(false)
    expect(isProblem('x')).toBe(false)
    expect(isProblem(null)).toBe(false)
  })
})
