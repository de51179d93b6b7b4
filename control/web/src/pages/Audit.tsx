import { useEffect, useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useResource } from '../app/hooks.ts'
import { AuditTable } from '../components/AuditTable.tsx'
import { EmptyState } from '../components/EmptyState.tsx'
import { Form, TextField } from '../components/Field.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Pagination } from '../components/Pagination.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import {
  auditExportUrl,
  auditPageQuery,
  formatAuditQuery,
  invalidAuditFields,
  parseAuditQuery,
  type AuditQuery,
} from '../lib/auditQuery.ts'
import { DEFAULT_LIMIT } from '../lib/listQuery.ts'
import { can } from '../lib/permissions.ts'

function Filters({ query, onApply }: { query: AuditQuery; onApply(q: AuditQuery): void }) {
  const { t } = useApp()
  const [draft, setDraft] = useState(query)
  useEffect(() => setDraft(query), [formatAuditQuery(query)])
  const bad = new Set(invalidAuditFields(draft))
  const set = (key: keyof AuditQuery) => (value: string) => setDraft({ ...draft, [key]: value })
  const err = (key: Parameters<typeof bad.has>[0]) => (bad.has(key) ? t('audit.badFilter') : undefined)
  return (
    <Form onSubmit={() => bad.size === 0 && onApply({ ...draft, offset: 0 })} label={t('audit.filters')}>
      <div class="row">
        <TextField id="f-action" label={t('audit.action')} value={draft.action} onValue={set('action')} hint={t('audit.actionHint')} error={err('action')} />
        <TextField id="f-target-type" label={t('audit.targetType')} value={draft.target_type} onValue={set('target_type')} error={err('target_type')} />
        <TextField id="f-target-id" label={t('audit.targetId')} value={draft.target_id} onValue={set('target_id')} error={err('target_id')} />
        <TextField id="f-actor" label={t('audit.actorId')} value={draft.actor_id} onValue={set('actor_id')} error={err('actor_id')} />
        <TextField id="f-since" label={t('audit.since')} type="date" value={draft.since} onValue={set('since')} error={err('since')} />
        <TextField id="f-until" label={t('audit.until')} type="date" value={draft.until} onValue={set('until')} error={err('until')} />
      </div>
      <div class="actions">
        <button type="submit" class="primary">
          {t('audit.apply')}
        </button>
        <button type="button" onClick={() => onApply(parseAuditQuery(''))}>
          {t('audit.clear')}
        </button>
      </div>
    </Form>
  )
}

export function Audit() {
  const { api, t, location, navigate } = useApp()
  const org = useOrg()
  const query = parseAuditQuery(location.search)
  const apply = (q: AuditQuery) => navigate(location.path + formatAuditQuery(q), { replace: true })
  const events = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/audit', { params: { path: { org_id: org.id }, query: auditPageQuery(query) }, signal })),
    [org.id, location.search],
  )
  if (!can(org.role, 'audit.read')) return <p class="alert">{t('common.notAllowed')}</p>
  return (
    <section>
      <PageHeader title={t('audit.title')}>
        {can(org.role, 'audit.export') && (
          <>
            <a class="button" href={auditExportUrl(org.id, query, 'csv')} download>
              {t('audit.exportCsv')}
            </a>
            <a class="button" href={auditExportUrl(org.id, query, 'json')} download>
              {t('audit.exportJson')}
            </a>
          </>
        )}
      </PageHeader>
      <Filters query={query} onApply={apply} />
      <ProblemAlert error={events.error} stale={events.data !== undefined} />
      {!events.data ? (
        events.error ? null : <Loading />
      ) : events.data.items.length === 0 ? (
        <EmptyState title={t('audit.none')} />
      ) : (
        <AuditTable events={events.data.items} caption={t('audit.title')} />
      )}
      {events.data && <Pagination total={events.data.total} offset={query.offset} limit={DEFAULT_LIMIT} onPage={(offset) => apply({ ...query, offset })} />}
    </section>
  )
}
