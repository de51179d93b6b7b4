import { describe, expect, it } from 'vitest'
import { en } from './en.ts'
import { detectLocale, interpolate, lookup, lookupOptional, translator } from './i18n.ts'
import { ja } from './ja.ts'

const dicts = { en: { greet: 'Hello {name}', only_en: 'English only' }, ja: { greet: 'こんにちは {name}' } }

describe('lookup', () => {
  it('uses the chosen language', () => {
    expect(lookup(dicts, 'ja', 'greet', { name: 'Kokoa' })).toBe('こんにちは Kokoa')
  })
  it('falls back to English, then to the key itself', () => {
    expect(lookup(dicts, 'ja', 'only_en')).toBe('English only')
    expect(lookup(dicts, 'fr', 'greet', { name: 'x' })).toBe('Hello x')
    expect(lookup(dicts, 'ja', 'missing.key')).toBe('missing.key')
  })
  it('optional keys fall back to the given text', () => {
    expect(lookupOptional(dicts, 'ja', 'problem.nope', 'Server title')).toBe('Server title')
    expect(lookupOptional(dicts, 'ja', 'only_en', 'x')).toBe('English only')
  })
})

describe('interpolate', () => {
  it('fills known placeholders and leaves unknown ones visible', () => {
    expect(interpolate('{a} and {b}', { a: 1 })).toBe('1 and {b}')
    expect(interpolate('no params')).toBe('no params')
  })
})

describe('detectLocale', () => {
  it('prefers the stored choice', () => {
    expect(detectLocale('ja', ['en-US'])).toBe('ja')
  })
  it('ignores a stored value we do not speak', () => {
    expect(detectLocale('de', ['ja-JP', 'en'])).toBe('ja')
  })
  it('takes the first browser language we speak', () => {
    expect(detectLocale(null, ['fr-FR', 'ja', 'en'])).toBe('ja')
    expect(detectLocale(null, ['EN-gb', 'ja'])).toBe('en')
  })
  it('defaults to English', () => {
    expect(detectLocale(null, [])).toBe('en')
    expect(detectLocale(null, ['ko-KR'])).toBe('en')
  })
})

describe('the dictionaries', () => {
  const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
  it('have the same keys', () => {
    expect(Object.keys(ja).sort()).toEqual(Object.keys(en).sort())
  })
  it('use the same placeholders per key', () => {
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(placeholders(ja[key]), key).toEqual(placeholders(en[key]))
    }
  })
  it('translate every key (no English left in Japanese, except names)', () => {
    const same = (Object.keys(en) as (keyof typeof en)[]).filter((k) => en[k] === ja[k])
    expect(same).toEqual([])
  })
  it('translator returns the language asked for', () => {
    expect(translator('ja')('nav.services')).toBe('サービス')
    expect(translator('en')('nav.services')).toBe('Services')
  })
})
