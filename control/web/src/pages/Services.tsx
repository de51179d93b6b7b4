import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import type { Agent, Service, ServiceIn } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useAction, useListQuery, useResource } from '../app/hooks.ts'
import type { PageProps } from '../app/routes.ts'
import { EmptyState } from '../components/EmptyState.tsx'
import { CheckboxField, Form, TextAreaField, TextField } from '../components/Field.tsx'
import { Link } from '../components/Link.tsx'
import { ListControls } from '../components/ListControls.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Pagination } from '../components/Pagination.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { RecentEvents } from '../components/RecentEvents.tsx'
import { DeleteButton, ToggleButton } from '../components/RowActions.tsx'
import { EnabledBadge } from '../components/StatusBadge.tsx'
import { RangeSelect, TrafficPanel } from '../components/TrafficPanel.tsx'
import { formatDateTime } from '../lib/format.ts'
import { toApiQuery } from '../lib/listQuery.ts'
import { can } from '../lib/permissions.ts'
import { orgPath } from '../lib/routes.ts'

function useServiceOps() {
  const { api } = useApp()
  const org = useOrg()
  const path = (id: string) => ({ params: { path: { org_id: org.id, service_id: id } } })
  return {
    toggle: (id: string, enable: boolean) =>
      unwrap(enable ? api.POST('/api/v1/orgs/{org_id}/services/{service_id}/enable', path(id)) : api.POST('/api/v1/orgs/{org_id}/services/{service_id}/disable', path(id))),
    remove: (id: string) => unwrap(api.DELETE('/api/v1/orgs/{org_id}/services/{service_id}', path(id))),
  }
}

function useAgents() {
  const { api } = useApp()
  const org = useOrg()
  return useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/agents', { params: { path: { org_id: org.id }, query: { limit: 200 } }, signal })),
    [org.id],
    { poll: false },
  )
}

export function Services() {
  const { api, t, location } = useApp()
  const org = useOrg()
  const [query, setQuery] = useListQuery()
  const list = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/services', { params: { path: { org_id: org.id }, query: toApiQuery(query) }, signal })),
    [org.id, location.search],
  )
  const ops = useServiceOps()
  const action = useAction()
  const canWrite = can(org.role, 'services.write')
  const filtered = query.q !== '' || query.enabled !== 'all'
  return (
    <section>
      <PageHeader title={t('services.title')}>
        {canWrite && (
          <Link href={orgPath(org.id, 'services', 'new')} class="button primary">
            {t('services.new')}
          </Link>
        )}
      </PageHeader>
      <ListControls query={query} onChange={setQuery} label={t('services.filter')} />
      <ProblemAlert error={action.error} />
      <ProblemAlert error={list.error} stale={list.data !== undefined} />
      {list.data === undefined ? (
        list.error ? null : <Loading />
      ) : list.data.items.length === 0 ? (
        <EmptyState title={filtered ? t('services.noMatch') : t('services.empty')}>
          {!filtered && (canWrite ? t('services.emptyHint') : t('common.askOperator'))}
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">{t('services.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('field.name')}</th>
                <th scope="col">{t('field.hostname')}</th>
                <th scope="col" class="wide-only">{t('field.origin')}</th>
                <th scope="col">{t('field.state')}</th>
                {canWrite && <th scope="col" class="wide-only">{t('common.actions')}</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((s) => (
                <tr key={s.id}>
                  <td>
                    <Link href={orgPath(org.id, 'services', s.id)}>{s.name}</Link>
                  </td>
                  <td>{s.hostname}</td>
                  <td class="wide-only">{s.origin}</td>
                  <td>
                    <EnabledBadge enabled={s.enabled} />
                  </td>
                  {canWrite && (
                    <td class="row-actions wide-only">
                      <ToggleButton enabled={s.enabled} name={s.name} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(s.id, on); list.reload() }} />
                      <Link href={orgPath(org.id, 'services', s.id, 'edit')} class="button" aria-label={t('action.editNamed', { name: s.name })}>
                        {t('action.edit')}
                      </Link>
                      <DeleteButton name={s.name} onDelete={() => ops.remove(s.id)} onDone={list.reload} />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.data && <Pagination total={list.data.total} offset={query.offset} limit={query.limit} onPage={(offset) => setQuery({ ...query, offset })} />}
    </section>
  )
}

interface FormState {
  name: string
  hostname: string
  origin: string
  description: string
  agent_ids: string[]
  connect_timeout: string
  read_timeout: string
  tls_verify: boolean
  host_header: string
  enabled: boolean
}

function initialState(s?: Service): FormState {
  return {
    name: s?.name ?? '',
    hostname: s?.hostname ?? '',
    origin: s?.origin ?? '',
    description: s?.description ?? '',
    agent_ids: s?.agent_ids ?? [],
    connect_timeout: String(s?.connect_timeout ?? 5),
    read_timeout: String(s?.read_timeout ?? 60),
    tls_verify: s?.tls_verify ?? true,
    host_header: s?.host_header ?? '',
    enabled: s?.enabled ?? true,
  }
}

function toBody(f: FormState): ServiceIn {
  return {
    name: f.name.trim(),
    hostname: f.hostname.trim(),
    origin: f.origin.trim(),
    description: f.description,
    agent_ids: f.agent_ids,
    connect_timeout: Number(f.connect_timeout),
    read_timeout: Number(f.read_timeout),
    tls_verify: f.tls_verify,
    host_header: f.host_header.trim() || null,
    enabled: f.enabled,
  }
}

function AgentPicker({ agents, selected, onChange }: { agents: Agent[] | undefined; selected: string[]; onChange(ids: string[]): void }) {
  const { t } = useApp()
  const flip = (id: string, on: boolean) => onChange(on ? [...selected, id] : selected.filter((x) => x !== id))
  return (
    <fieldset class="field">
      <legend>{t('field.agents')}</legend>
      {agents === undefined ? (
        <Loading />
      ) : agents.length === 0 ? (
        <p class="hint">{t('services.noAgents')}</p>
      ) : (
        agents.map((a) => (
          <CheckboxField key={a.id} id={`agent-${a.id}`} label={a.name} checked={selected.includes(a.id)} onChecked={(on) => flip(a.id, on)} />
        ))
      )}
    </fieldset>
  )
}

function ServiceForm({ service, onSaved }: { service?: Service; onSaved(s: Service): void }) {
  const { api, t } = useApp()
  const org = useOrg()
  const agents = useAgents()
  const [f, setF] = useState<FormState>(() => initialState(service))
  const action = useAction()
  const errors = fieldErrors(action.error)
  const set = <K extends keyof FormState>(key: K) => (value: FormState[K]) => setF((old) => ({ ...old, [key]: value }))
  const submit = () =>
    action.run(async () => {
      const { enabled, ...patch } = toBody(f)
      const saved = service
        ? await unwrap(api.PATCH('/api/v1/orgs/{org_id}/services/{service_id}', { params: { path: { org_id: org.id, service_id: service.id } }, body: patch }))
        : await unwrap(api.POST('/api/v1/orgs/{org_id}/services', { params: { path: { org_id: org.id } }, body: { ...patch, enabled } }))
      onSaved(saved)
    })
  return (
    <>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={service ? t('services.edit') : t('services.new')}>
        <TextField id="name" label={t('field.name')} required value={f.name} onValue={set('name')} error={errors.name} hint={t('hint.name')} />
        <TextField id="hostname" label={t('field.hostname')} required value={f.hostname} onValue={set('hostname')} error={errors.hostname} hint={t('hint.hostname')} />
        <TextField id="origin" label={t('field.origin')} required value={f.origin} onValue={set('origin')} error={errors.origin} hint={t('hint.origin')} />
        <TextAreaField id="description" label={t('field.description')} value={f.description} onValue={set('description')} error={errors.description} />
        <AgentPicker agents={agents.data?.items} selected={f.agent_ids} onChange={set('agent_ids')} />
        <details class="advanced">
          <summary>{t('services.advanced')}</summary>
          <TextField id="connect_timeout" label={t('field.connectTimeout')} type="number" min="0.1" step="0.1" value={f.connect_timeout} onValue={set('connect_timeout')} error={errors.connect_timeout} />
          <TextField id="read_timeout" label={t('field.readTimeout')} type="number" min="0.1" step="1" value={f.read_timeout} onValue={set('read_timeout')} error={errors.read_timeout} />
          <TextField id="host_header" label={t('field.hostHeader')} value={f.host_header} onValue={set('host_header')} error={errors.host_header} hint={t('hint.hostHeader')} />
          <CheckboxField id="tls_verify" label={t('field.tlsVerify')} checked={f.tls_verify} onChecked={set('tls_verify')} />
        </details>
        {!service && <CheckboxField id="enabled" label={t('field.enabledNow')} checked={f.enabled} onChecked={set('enabled')} />}
        <button type="submit" class="primary" disabled={action.busy}>
          {service ? t('common.save') : t('services.create')}
        </button>
      </Form>
    </>
  )
}

export function ServiceNew() {
  const { t, navigate, notify } = useApp()
  const org = useOrg()
  if (!can(org.role, 'services.write')) return <p class="alert">{t('common.notAllowed')}</p>
  return (
    <section class="narrow">
      <PageHeader title={t('services.new')} />
      <ServiceForm
        onSaved={(s) => {
          notify(t('notice.created', { name: s.name }))
          navigate(orgPath(org.id, 'services', s.id))
        }}
      />
    </section>
  )
}

function useService(id: string) {
  const { api } = useApp()
  const org = useOrg()
  return useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/services/{service_id}', { params: { path: { org_id: org.id, service_id: id } }, signal })),
    [org.id, id],
  )
}

export function ServiceEdit({ params }: PageProps) {
  const { t, navigate, notify } = useApp()
  const org = useOrg()
  const service = useService(params.id ?? '')
  if (!can(org.role, 'services.write')) return <p class="alert">{t('common.notAllowed')}</p>
  if (!service.data) return service.error ? <ProblemAlert error={service.error} /> : <Loading />
  return (
    <section class="narrow">
      <PageHeader title={t('services.editNamed', { name: service.data.name })} />
      <ServiceForm
        service={service.data}
        onSaved={(s) => {
          notify(t('notice.saved', { name: s.name }))
          navigate(orgPath(org.id, 'services', s.id))
        }}
      />
    </section>
  )
}

export function ServiceDetail({ params }: PageProps) {
  const { t, locale, navigate } = useApp()
  const org = useOrg()
  const service = useService(params.id ?? '')
  const agents = useAgents()
  const ops = useServiceOps()
  const action = useAction()
  const s = service.data
  if (!s) return service.error ? <ProblemAlert error={service.error} /> : <Loading />
  const canWrite = can(org.role, 'services.write')
  const names = new Map(agents.data?.items.map((a) => [a.id, a.name]))
  return (
    <section>
      <PageHeader title={s.name}>
        {canWrite && (
          <>
            <ToggleButton enabled={s.enabled} name={s.name} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(s.id, on); service.reload() }} />
            <Link href={orgPath(org.id, 'services', s.id, 'edit')} class="button">
              {t('action.edit')}
            </Link>
            <DeleteButton name={s.name} onDelete={() => ops.remove(s.id)} onDone={() => navigate(orgPath(org.id, 'services'))} />
          </>
        )}
      </PageHeader>
      <ProblemAlert error={action.error} />
      <ProblemAlert error={service.error} stale />
      <dl class="details">
        <dt>{t('field.state')}</dt>
        <dd><EnabledBadge enabled={s.enabled} /></dd>
        <dt>{t('field.hostname')}</dt>
        <dd>{s.hostname}</dd>
        <dt>{t('field.origin')}</dt>
        <dd>{s.origin}</dd>
        <dt>{t('field.description')}</dt>
        <dd>{s.description || '—'}</dd>
        <dt>{t('field.agents')}</dt>
        <dd>
          {s.agent_ids.length === 0
            ? t('services.noAgentsAssigned')
            : s.agent_ids.map((id) => (
                <Link key={id} href={orgPath(org.id, 'agents', id)} class="chip">
                  {names.get(id) ?? id}
                </Link>
              ))}
        </dd>
        <dt>{t('field.connectTimeout')}</dt>
        <dd>{s.connect_timeout}</dd>
        <dt>{t('field.readTimeout')}</dt>
        <dd>{s.read_timeout}</dd>
        <dt>{t('field.tlsVerify')}</dt>
        <dd>{s.tls_verify ? t('common.yes') : t('common.no')}</dd>
        <dt>{t('field.hostHeader')}</dt>
        <dd>{s.host_header ?? '—'}</dd>
        <dt>{t('field.updated')}</dt>
        <dd>{formatDateTime(s.updated_at, locale)}</dd>
      </dl>
      <div class="section-head">
        <h2>{t('dashboard.traffic')}</h2>
        <RangeSelect />
      </div>
      <TrafficPanel heading="chart.byNode" filter={{ by: 'node', service_id: s.id }} />
      <TrafficPanel heading="chart.byAgent" filter={{ by: 'agent', service_id: s.id }} />
      <RecentEvents targetType="service" targetId={s.id} />
    </section>
  )
}
