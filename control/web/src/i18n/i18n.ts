// Message lookup: the chosen language, then English, then the key itself (never a blank).
// Dictionaries are flat objects of dotted keys; `{name}` placeholders are filled from params.
import { en, type MessageKey } from './en.ts'
import { ja } from './ja.ts'

export const LOCALES = ['en', 'ja'] as const
export type Locale = (typeof LOCALES)[number]
export type Params = Record<string, string | number>
export type Dictionary = Readonly<Record<string, string>>
export type Translate = (key: MessageKey, params?: Params) => string

export const DICTIONARIES: Readonly<Record<Locale, Dictionary>> = { en, ja }

export function interpolate(template: string, params?: Params): string {
  if (!params) return template
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  )
}

export function lookup(
  dictionaries: Readonly<Record<string, Dictionary>>,
  locale: string,
  key: string,
  params?: Params,
): string {
  const text = dictionaries[locale]?.[key] ?? dictionaries.en?.[key] ?? key
  return interpolate(text, params)
}

/** A key that may not exist (a problem type from the server, an audit action): `fallback`
 * when neither the language nor English has it. */
export function lookupOptional(
  dictionaries: Readonly<Record<string, Dictionary>>,
  locale: string,
  key: string,
  fallback: string,
): string {
  return dictionaries[locale]?.[key] ?? dictionaries.en?.[key] ?? fallback
}

export function isLocale(value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value)
}

/** The stored choice if any, else the first browser language we speak, else English. */
export function detectLocale(stored: string | null, browser: readonly string[]): Locale {
  if (isLocale(stored)) return stored
  for (const tag of browser) {
    const primary = tag.toLowerCase().split('-')[0]
    if (isLocale(primary)) return primary
  }
  return 'en'
}

export function translator(locale: Locale): Translate {
  return (key, params) => lookup(DICTIONARIES, locale, key, params)
}
