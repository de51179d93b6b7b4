import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import type { Agent, AgentIn } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useAction, useListQuery, useResource } from '../app/hooks.ts'
import type { PageProps } from '../app/routes.ts'
import { EmptyState } from '../components/EmptyState.tsx'
import { EnrollmentPanel, NewHolder } from '../components/Enrollment.tsx'
import { Form, SelectField, TextAreaField, TextField } from '../components/Field.tsx'
import { LabelChips } from '../components/Labels.tsx'
import { Link } from '../components/Link.tsx'
import { ListControls } from '../components/ListControls.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Pagination } from '../components/Pagination.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { ProblemList } from '../components/Alerts.tsx'
import { PeerChips, PeerTable } from '../components/Peers.tsx'
import { RecentEvents } from '../components/RecentEvents.tsx'
import { DeleteButton, HolderToggle, RevocationNote } from '../components/RowActions.tsx'
import { EnabledBadge, StatusBadge } from '../components/StatusBadge.tsx'
import { RangeSelect, TrafficPanel } from '../components/TrafficPanel.tsx'
import { peersBy } from '../lib/connections.ts'
import { formatDateTime, formatRelative } from '../lib/format.ts'
import { formatLabels, parseLabels } from '../lib/labels.ts'
import { toApiQuery } from '../lib/listQuery.ts'
import { allPages } from '../lib/pages.ts'
import { can } from '../lib/permissions.ts'
import { orgPath } from '../lib/routes.ts'

type IngressMode = Agent['ingress_mode']

function useAgentOps() {
  const { api } = useApp()
  const org = useOrg()
  const path = (id: string) => ({ params: { path: { org_id: org.id, agent_id: id } } })
  return {
    toggle: (id: string, enable: boolean) =>
      unwrap(enable ? api.POST('/api/v1/orgs/{org_id}/agents/{agent_id}/enable', path(id)) : api.POST('/api/v1/orgs/{org_id}/agents/{agent_id}/disable', path(id))),
    remove: (id: string) => unwrap(api.DELETE('/api/v1/orgs/{org_id}/agents/{agent_id}', path(id))),
  }
}

export function Agents() {
  const { api, t, locale, location } = useApp()
  const org = useOrg()
  const [query, setQuery] = useListQuery()
  const list = useResource(
    async (signal) => {
      const path = { org_id: org.id }
      const [page, connections] = await Promise.all([
        unwrap(api.GET('/api/v1/orgs/{org_id}/agents', { params: { path, query: toApiQuery(query) }, signal })),
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/connections', { params: { path, query: { limit, offset } }, signal }))),
      ])
      return { ...page, nodes: peersBy(connections.items, 'agent') }
    },
    [org.id, location.search],
  )
  const ops = useAgentOps()
  const action = useAction()
  const canToggle = can(org.role, 'agents.toggle')
  const canWrite = can(org.role, 'agents.write')
  const filtered = query.q !== '' || query.enabled !== 'all'
  return (
    <section>
      <PageHeader title={t('agents.title')}>
        {canWrite && (
          <Link href={orgPath(org.id, 'agents', 'new')} class="button primary">
            {t('agents.new')}
          </Link>
        )}
      </PageHeader>
      <ListControls query={query} onChange={setQuery} label={t('agents.filter')} />
      <ProblemAlert error={action.error} />
      <ProblemAlert error={list.error} stale={list.data !== undefined} />
      {list.data === undefined ? (
        list.error ? null : <Loading />
      ) : list.data.items.length === 0 ? (
        <EmptyState title={filtered ? t('agents.noMatch') : t('agents.empty')}>{!filtered && (canWrite ? t('agents.emptyHint') : t('common.askAdmin'))}</EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">{t('agents.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('field.name')}</th>
                <th scope="col">{t('field.status')}</th>
                <th scope="col" class="wide-only">{t('field.version')}</th>
                <th scope="col">{t('agents.connectedNodes')}</th>
                <th scope="col" class="wide-only">{t('field.ingressMode')}</th>
                <th scope="col">{t('field.state')}</th>
                <th scope="col" class="wide-only">{t('field.lastSeen')}</th>
                {canToggle && <th scope="col" class="wide-only">{t('common.actions')}</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link href={orgPath(org.id, 'agents', a.id)}>{a.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={a.status} detail={a.status_detail} />
                    {a.enabled && a.status !== 'online' && a.status_detail && <span class="hint block">{a.status_detail}</span>}
                  </td>
                  <td class="wide-only">{a.version ?? '—'}</td>
                  <td><PeerChips peers={list.data?.nodes.get(a.id)} to="nodes" /></td>
                  <td class="wide-only">{t(`agents.mode.${a.ingress_mode}`)}</td>
                  <td><EnabledBadge enabled={a.enabled} /></td>
                  <td class="wide-only">{formatRelative(a.last_seen_at, locale)}</td>
                  {canToggle && (
                    <td class="row-actions wide-only">
                      <HolderToggle kind="agent" holder={a} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(a.id, on); list.reload() }} />
                      {canWrite && <DeleteButton name={a.name} body={<RevocationNote kind="agent" action="delete" />} onDelete={() => ops.remove(a.id)} onDone={list.reload} />}
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

function AgentForm({ agent, onSaved }: { agent?: Agent; onSaved(a: Agent): void | Promise<void> }) {
  const { api, t } = useApp()
  const org = useOrg()
  const [name, setName] = useState(agent?.name ?? '')
  const [labels, setLabels] = useState(formatLabels(agent?.labels ?? {}))
  const [mode, setMode] = useState<IngressMode>(agent?.ingress_mode ?? 'all')
  const [ingressLabels, setIngressLabels] = useState(formatLabels(agent?.ingress_labels ?? {}))
  const action = useAction()
  const errors = fieldErrors(action.error)
  const own = parseLabels(labels)
  const wanted = parseLabels(ingressLabels)
  const bad = (p: typeof own, fallback?: string) => (p.errors.length ? t('hint.badLabels', { entries: p.errors.join(', ') }) : fallback)
  const submit = () =>
    action.run(async () => {
      if (own.errors.length || wanted.errors.length) return
      const body: AgentIn = { name: name.trim(), labels: own.labels, ingress_mode: mode, ingress_labels: mode === 'labels' ? wanted.labels : {} }
      const saved = agent
        ? await unwrap(api.PATCH('/api/v1/orgs/{org_id}/agents/{agent_id}', { params: { path: { org_id: org.id, agent_id: agent.id } }, body }))
        : await unwrap(api.POST('/api/v1/orgs/{org_id}/agents', { params: { path: { org_id: org.id } }, body }))
      await onSaved(saved)
    })
  return (
    <>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={agent ? t('agents.edit') : t('agents.new')}>
        <TextField id="name" label={t('field.name')} required value={name} onValue={setName} error={errors.name} hint={t('hint.name')} />
        <TextAreaField id="labels" label={t('field.labels')} value={labels} onValue={setLabels} error={bad(own, errors.labels)} hint={t('hint.labels')} />
        <SelectField<IngressMode>
          id="ingress_mode"
          label={t('field.ingressMode')}
          value={mode}
          onValue={setMode}
          options={[
            { value: 'all', label: t('agents.mode.all') },
            { value: 'labels', label: t('agents.mode.labels') },
          ]}
        />
        {mode === 'labels' && (
          <TextAreaField id="ingress_labels" label={t('field.ingressLabels')} value={ingressLabels} onValue={setIngressLabels} error={bad(wanted, errors.ingress_labels)} hint={t('hint.ingressLabels')} />
        )}
        <button type="submit" class="primary" disabled={action.busy}>
          {agent ? t('common.save') : t('agents.create')}
        </button>
      </Form>
    </>
  )
}

export function AgentNew() {
  return <NewHolder<Agent> kind="agent" form={(onSaved) => <AgentForm onSaved={onSaved} />} />
}

export function AgentDetail({ params }: PageProps) {
  const { api, t, locale, navigate, notify } = useApp()
  const org = useOrg()
  const ops = useAgentOps()
  const action = useAction()
  const [editing, setEditing] = useState(false)
  const id = params.id ?? ''
  const agent = useResource(
    async (signal) => {
      const path = { org_id: org.id }
      const [config, status, connections] = await Promise.all([
        unwrap(api.GET('/api/v1/orgs/{org_id}/agents/{agent_id}', { params: { path: { ...path, agent_id: id } }, signal })),
        unwrap(api.GET('/api/v1/orgs/{org_id}/status/agents/{agent_id}', { params: { path: { ...path, agent_id: id } }, signal })),
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/connections', { params: { path, query: { agent_id: id, limit, offset } }, signal }))),
      ])
      return { config, status, nodes: peersBy(connections.items, 'agent').get(id) ?? [] }
    },
    [org.id, id],
  )
  const services = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/services', { params: { path: { org_id: org.id }, query: { agent_id: id, limit: 200 } }, signal })),
    [org.id, id],
  )
  if (!agent.data) return agent.error ? <ProblemAlert error={agent.error} /> : <Loading />
  const { config: a, status: st, nodes } = agent.data
  const canWrite = can(org.role, 'agents.write')
  return (
    <section>
      <PageHeader title={a.name}>
        {can(org.role, 'agents.toggle') && (
          <HolderToggle kind="agent" holder={a} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(a.id, on); agent.reload() }} />
        )}
        {canWrite && (
          <>
            <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>
              {t('action.edit')}
            </button>
            <DeleteButton name={a.name} body={<RevocationNote kind="agent" action="delete" />} onDelete={() => ops.remove(a.id)} onDone={() => navigate(orgPath(org.id, 'agents'))} />
          </>
        )}
      </PageHeader>
      <ProblemAlert error={action.error} />
      <ProblemAlert error={agent.error} stale />
      {editing && (
        <div class="panel narrow">
          <AgentForm agent={a} onSaved={(saved) => { notify(t('notice.saved', { name: saved.name })); setEditing(false); agent.reload() }} />
        </div>
      )}
      <dl class="details">
        <dt>{t('field.status')}</dt>
        <dd><StatusBadge status={a.status} /> {a.status_detail}</dd>
        <dt>{t('field.problems')}</dt>
        <dd><ProblemList problems={st?.problems ?? []} /></dd>
        <dt>{t('field.state')}</dt>
        <dd><EnabledBadge enabled={a.enabled} /></dd>
        <dt>{t('field.version')}</dt>
        <dd>{st?.software ?? a.version ?? '—'}</dd>
        <dt>{t('field.startedAt')}</dt>
        <dd>{formatDateTime(st?.started_at, locale)}</dd>
        <dt>{t('field.snapshotVersion')}</dt>
        <dd>{st?.snapshot_version ? <code>{st.snapshot_version.slice(0, 12)}</code> : '—'}</dd>
        <dt>{t('field.channel')}</dt>
        <dd>{st?.channel_open ? t('field.channelOpen') : t('field.channelClosed')}</dd>
        <dt>{t('field.lastSeen')}</dt>
        <dd>{formatDateTime(a.last_seen_at, locale)}</dd>
        <dt>{t('field.labels')}</dt>
        <dd><LabelChips labels={a.labels} /></dd>
        <dt>{t('field.ingressMode')}</dt>
        <dd>
          {t(`agents.mode.${a.ingress_mode}`)} {a.ingress_mode === 'labels' && <LabelChips labels={a.ingress_labels} />}
        </dd>
        <dt>{t('agents.services')}</dt>
        <dd>
          {services.data === undefined
            ? '…'
            : services.data.items.length === 0
              ? t('agents.noServices')
              : services.data.items.map((s) => (
                  <Link key={s.id} href={orgPath(org.id, 'services', s.id)} class="chip">
                    {s.name}
                  </Link>
                ))}
        </dd>
      </dl>
      <h2>{t('agents.connectedNodes')}</h2>
      {nodes.length === 0 ? <p>{t('peers.none')}</p> : <PeerTable peers={nodes} to="nodes" caption={t('agents.connectedNodes')} />}
      <div class="section-head">
        <h2>{t('dashboard.traffic')}</h2>
        <RangeSelect />
      </div>
      <TrafficPanel heading="chart.byServiceAgent" filter={{ by: 'service', agent_id: a.id }} />
      <EnrollmentPanel target={{ kind: 'agent', id: a.id }} />
      <RecentEvents targetType="agent" targetId={a.id} />
    </section>
  )
}
