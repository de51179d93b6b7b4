// Labels as people type them: one "key=value" per line (or comma separated).

export interface ParsedLabels {
  labels: Record<string, string>
  errors: string[] // the entries that are not key=value, as typed
}

const KEY = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/
const VALUE = /^[A-Za-z0-9._-]{0,63}$/

export function parseLabels(text: string): ParsedLabels {
  const labels: Record<string, string> = {}
  const errors: string[] = []
  for (const raw of text.split(/[\n,]/)) {
    const entry = raw.trim()
    if (!entry) continue
    const eq = entry.indexOf('=')
    const key = eq < 0 ? '' : entry.slice(0, eq).trim()
    const value = eq < 0 ? '' : entry.slice(eq + 1).trim()
    if (eq < 0 || !KEY.test(key) || !VALUE.test(value)) errors.push(entry)
    else labels[key] = value
  }
  return { labels, errors }
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')
}
