import { useEffect, useState } from 'preact/hooks'
import { useApp } from '../app/context.ts'
import { formatListQuery, withFilter, type EnabledFilter, type ListQuery } from '../lib/listQuery.ts'

const DEBOUNCE_MS = 300

/** Search text and the enabled filter of a list; typing updates the list after a pause. */
export function ListControls({ query, onChange, label }: { query: ListQuery; onChange(q: ListQuery): void; label: string }) {
  const { t } = useApp()
  const [text, setText] = useState(query.q)
  useEffect(() => setText(query.q), [query.q])
  useEffect(() => {
    if (text === query.q) return
    const timer = window.setTimeout(() => onChange(withFilter(query, { q: text })), DEBOUNCE_MS)
    return () => window.clearTimeout(timer)
  }, [text, formatListQuery(query)]) // a filter changed meanwhile is kept, not overwritten
  return (
    <div class="filters" role="search" aria-label={label}>
      <div class="field">
        <label for="search">{t('list.search')}</label>
        <input id="search" type="search" value={text} maxLength={100} onInput={(e) => setText(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="enabled-filter">{t('list.show')}</label>
        <select
          id="enabled-filter"
          value={query.enabled}
          onChange={(e) => onChange(withFilter(query, { enabled: e.currentTarget.value as EnabledFilter }))}
        >
          <option value="all">{t('list.all')}</option>
          <option value="enabled">{t('list.onlyEnabled')}</option>
          <option value="disabled">{t('list.onlyDisabled')}</option>
        </select>
      </div>
    </div>
  )
}
