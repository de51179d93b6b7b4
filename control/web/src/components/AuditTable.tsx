import type { AuditEvent } from '../api/types.ts'
import { useApp } from '../app/context.ts'
import { formatDateTime } from '../lib/format.ts'

function Change({ event }: { event: AuditEvent }) {
  const { t } = useApp()
  if (!event.before && !event.after) return null
  return (
    <details>
      <summary>{t('audit.changes')}</summary>
      {event.before && (
        <>
          <p class="hint">{t('audit.before')}</p>
          <pre>{JSON.stringify(event.before, null, 2)}</pre>
        </>
      )}
      {event.after && (
        <>
          <p class="hint">{t('audit.after')}</p>
          <pre>{JSON.stringify(event.after, null, 2)}</pre>
        </>
      )}
    </details>
  )
}

/** Audit events, newest first: when, who, what, to what, from where. */
export function AuditTable({ events, caption, compact = false }: { events: AuditEvent[]; caption: string; compact?: boolean }) {
  const { t, locale, optional } = useApp()
  return (
    <div class="table-wrap">
      <table class="audit">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{t('audit.at')}</th>
            <th scope="col">{t('audit.actor')}</th>
            <th scope="col">{t('audit.action')}</th>
            <th scope="col">{t('audit.target')}</th>
            {!compact && <th scope="col" class="wide-only">{t('audit.client')}</th>}
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id}>
              <td class="nowrap">{formatDateTime(e.at, locale)}</td>
              <td>{e.actor_label}</td>
              <td>
                <code>{e.action}</code>
                <span class="hint block">{optional(`event.${e.action}`, '')}</span>
                {!compact && <Change event={e} />}
              </td>
              <td>{e.target_label || e.target_id || '—'}{e.target_type && <span class="hint block">{e.target_type}</span>}</td>
              {!compact && <td class="wide-only">{e.client_ip ?? '—'}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
