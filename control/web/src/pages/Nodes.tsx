import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import type { HealthCheck, Node, NodeIn, NodeStatus } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useAction, useListQuery, useResource } from '../app/hooks.ts'
import type { PageProps } from '../app/routes.ts'
import { EmptyState } from '../components/EmptyState.tsx'
import { EnrollmentPanel, NewHolder } from '../components/Enrollment.tsx'
import { Form, TextAreaField, TextField } from '../components/Field.tsx'
import { LabelChips } from '../components/Labels.tsx'
import { Link } from '../components/Link.tsx'
import { ListControls } from '../components/ListControls.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Pagination } from '../components/Pagination.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { ProblemList } from '../components/Alerts.tsx'
import { PeerTable } from '../components/Peers.tsx'
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

function useNodeOps() {
  const { api } = useApp()
  const org = useOrg()
  const path = (id: string) => ({ params: { path: { org_id: org.id, node_id: id } } })
  return {
    toggle: (id: string, enable: boolean) =>
      unwrap(enable ? api.POST('/api/v1/orgs/{org_id}/nodes/{node_id}/enable', path(id)) : api.POST('/api/v1/orgs/{org_id}/nodes/{node_id}/disable', path(id))),
    remove: (id: string) => unwrap(api.DELETE('/api/v1/orgs/{org_id}/nodes/{node_id}', path(id))),
  }
}

export function Nodes() {
  const { api, t, locale, location } = useApp()
  const org = useOrg()
  const [query, setQuery] = useListQuery()
  const list = useResource(
    async (signal) => {
      const path = { org_id: org.id }
      const [page, status] = await Promise.all([
        unwrap(api.GET('/api/v1/orgs/{org_id}/nodes', { params: { path, query: toApiQuery(query) }, signal })),
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/nodes', { params: { path, query: { limit, offset } }, signal }))),
      ])
      return { ...page, status: new Map(status.items.map((x) => [x.id, x])) }
    },
    [org.id, location.search],
  )
  const ops = useNodeOps()
  const action = useAction()
  const canToggle = can(org.role, 'nodes.toggle')
  const canWrite = can(org.role, 'nodes.write')
  const filtered = query.q !== '' || query.enabled !== 'all'
  return (
    <section>
      <PageHeader title={t('nodes.title')}>
        {canWrite && (
          <Link href={orgPath(org.id, 'nodes', 'new')} class="button primary">
            {t('nodes.new')}
          </Link>
        )}
      </PageHeader>
      <ListControls query={query} onChange={setQuery} label={t('nodes.filter')} />
      <ProblemAlert error={action.error} />
      <ProblemAlert error={list.error} stale={list.data !== undefined} />
      {list.data === undefined ? (
        list.error ? null : <Loading />
      ) : list.data.items.length === 0 ? (
        <EmptyState title={filtered ? t('nodes.noMatch') : t('nodes.empty')}>{!filtered && (canWrite ? t('nodes.emptyHint') : t('common.askAdmin'))}</EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">{t('nodes.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('field.name')}</th>
                <th scope="col">{t('field.status')}</th>
                <th scope="col" class="wide-only">{t('field.region')}</th>
                <th scope="col" class="wide-only">{t('field.weight')}</th>
                <th scope="col" class="wide-only">{t('field.software')}</th>
                <th scope="col">{t('nodes.agentsConnected')}</th>
                <th scope="col" class="wide-only">{t('readiness.short')}</th>
                <th scope="col">{t('field.state')}</th>
                <th scope="col" class="wide-only">{t('field.lastSeen')}</th>
                {canToggle && <th scope="col" class="wide-only">{t('common.actions')}</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((n) => {
                const st = list.data?.status.get(n.id)
                return (
                <tr key={n.id}>
                  <td>
                    <Link href={orgPath(org.id, 'nodes', n.id)}>{n.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={n.status} detail={n.status_detail} />
                    {n.enabled && n.status !== 'online' && n.status_detail && <span class="hint block">{n.status_detail}</span>}
                  </td>
                  <td class="wide-only">{n.region || '—'}</td>
                  <td class="wide-only">{n.weight}</td>
                  <td class="wide-only">{st?.software ?? n.version ?? '—'}</td>
                  <td>{st && st.channel_open ? st.connections : '—'}</td>
                  <td class="wide-only"><Verdict check={st?.health_check ?? null} /></td>
                  <td><EnabledBadge enabled={n.enabled} /></td>
                  <td class="wide-only">{formatRelative(n.last_seen_at, locale)}</td>
                  {canToggle && (
                    <td class="row-actions wide-only">
                      <HolderToggle kind="node" holder={n} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(n.id, on); list.reload() }} />
                      {canWrite && <DeleteButton name={n.name} body={<RevocationNote kind="node" action="delete" />} onDelete={() => ops.remove(n.id)} onDone={list.reload} />}
                    </td>
                  )}
                </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
      {list.data && <Pagination total={list.data.total} offset={query.offset} limit={query.limit} onPage={(offset) => setQuery({ ...query, offset })} />}
    </section>
  )
}

function NodeForm({ node, onSaved }: { node?: Node; onSaved(n: Node): void | Promise<void> }) {
  const { api, t } = useApp()
  const org = useOrg()
  const [name, setName] = useState(node?.name ?? '')
  const [publicAddress, setPublicAddress] = useState(node?.public_address ?? '')
  const [tunnelAddress, setTunnelAddress] = useState(node?.tunnel_address ?? '')
  const [region, setRegion] = useState(node?.region ?? '')
  const [weight, setWeight] = useState(String(node?.weight ?? 100))
  const [labels, setLabels] = useState(formatLabels(node?.labels ?? {}))
  const action = useAction()
  const errors = fieldErrors(action.error)
  const parsed = parseLabels(labels)
  const labelError = parsed.errors.length ? t('hint.badLabels', { entries: parsed.errors.join(', ') }) : errors.labels
  const submit = () =>
    action.run(async () => {
      if (parsed.errors.length) return
      const body: NodeIn = {
        name: name.trim(),
        public_address: publicAddress.trim(),
        tunnel_address: tunnelAddress.trim(),
        region: region.trim(),
        weight: Number(weight),
        labels: parsed.labels,
      }
      const saved = node
        ? await unwrap(api.PATCH('/api/v1/orgs/{org_id}/nodes/{node_id}', { params: { path: { org_id: org.id, node_id: node.id } }, body }))
        : await unwrap(api.POST('/api/v1/orgs/{org_id}/nodes', { params: { path: { org_id: org.id } }, body }))
      await onSaved(saved)
    })
  return (
    <>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={node ? t('nodes.edit') : t('nodes.new')}>
        <TextField id="name" label={t('field.name')} required value={name} onValue={setName} error={errors.name} hint={t('hint.name')} />
        <TextField id="public_address" label={t('field.publicAddress')} required value={publicAddress} onValue={setPublicAddress} error={errors.public_address} hint={t('hint.address')} />
        <TextField id="tunnel_address" label={t('field.tunnelAddress')} required value={tunnelAddress} onValue={setTunnelAddress} error={errors.tunnel_address} hint={t('hint.address')} />
        <TextField id="region" label={t('field.region')} value={region} onValue={setRegion} error={errors.region} />
        <TextField id="weight" label={t('field.weight')} type="number" min="1" max="1000" value={weight} onValue={setWeight} error={errors.weight} hint={t('hint.weight')} />
        <TextAreaField id="labels" label={t('field.labels')} value={labels} onValue={setLabels} error={labelError} hint={t('hint.labels')} />
        <button type="submit" class="primary" disabled={action.busy}>
          {node ? t('common.save') : t('nodes.create')}
        </button>
      </Form>
    </>
  )
}

export function NodeNew() {
  return <NewHolder<Node> kind="node" form={(onSaved) => <NodeForm onSaved={onSaved} />} />
}

/** A readiness check's verdict as a word with a shape: passing, failing, or not yet judged. */
function Verdict({ check }: { check: HealthCheck | null }) {
  const { t } = useApp()
  if (!check) return <>{t('readiness.none')}</>
  if (check.ok === null) return <span class="badge status-unknown"><span class="dot" aria-hidden="true" />{t('readiness.pending')}</span>
  return (
    <span class={`badge ${check.ok ? 'status-online' : 'status-offline'}`} title={check.detail || undefined}>
      <span class="dot" aria-hidden="true" />
      {check.ok ? t('readiness.passing') : t('readiness.failing')}
    </span>
  )
}

/** The control plane's readiness check of this node: what it says, and (admins) its URL. */
function ReadinessCheck({ node, onChanged }: { node: NodeStatus; onChanged(): void }) {
  const { api, t, locale, notify } = useApp()
  const org = useOrg()
  const check = node.health_check
  const [url, setUrl] = useState(check?.url ?? '')
  const action = useAction()
  const errors = fieldErrors(action.error)
  const path = { params: { path: { org_id: org.id, node_id: node.id } } }
  const save = () =>
    action.run(async () => {
      await unwrap(api.PUT('/api/v1/orgs/{org_id}/status/nodes/{node_id}/health-check', { ...path, body: { url: url.trim() } }))
      notify(t('readiness.saved', { name: node.name }))
      onChanged()
    })
  const remove = () =>
    action.run(async () => {
      await unwrap(api.DELETE('/api/v1/orgs/{org_id}/status/nodes/{node_id}/health-check', path))
      setUrl('')
      notify(t('readiness.removed', { name: node.name }))
      onChanged()
    })
  return (
    <section class="panel" aria-labelledby="readiness">
      <h2 id="readiness">{t('readiness.title')}</h2>
      <p class="hint">{t('readiness.intro')}</p>
      {check ? (
        <dl class="details">
          <dt>{t('readiness.url')}</dt>
          <dd><code>{check.url}</code></dd>
          <dt>{t('readiness.result')}</dt>
          <dd><Verdict check={check} /> {check.detail}</dd>
          <dt>{t('readiness.checked')}</dt>
          <dd>{formatDateTime(check.checked_at, locale)}</dd>
          <dt>{t('readiness.failures')}</dt>
          <dd>{check.failures}</dd>
        </dl>
      ) : (
        <p>{t('readiness.noneSet')}</p>
      )}
      {can(org.role, 'nodes.write') && (
        <>
          <ProblemAlert error={action.error} />
          <Form onSubmit={() => void save()} label={t('readiness.title')}>
            <TextField id="health_check_url" label={t('readiness.url')} value={url} onValue={setUrl} error={errors.url} hint={t('readiness.urlHint')} required maxLength={300} />
            <div class="actions">
              <button type="submit" class="primary" disabled={action.busy}>
                {check ? t('readiness.replace') : t('readiness.set')}
              </button>
              {check && (
                <button type="button" class="danger-outline" disabled={action.busy} onClick={() => void remove()}>
                  {t('readiness.remove')}
                </button>
              )}
            </div>
          </Form>
        </>
      )}
    </section>
  )
}

export function NodeDetail({ params }: PageProps) {
  const { api, t, locale, navigate, notify } = useApp()
  const org = useOrg()
  const ops = useNodeOps()
  const action = useAction()
  const [editing, setEditing] = useState(false)
  const id = params.id ?? ''
  const node = useResource(
    async (signal) => {
      const path = { org_id: org.id, node_id: id }
      const [config, status, connections] = await Promise.all([
        unwrap(api.GET('/api/v1/orgs/{org_id}/nodes/{node_id}', { params: { path }, signal })),
        unwrap(api.GET('/api/v1/orgs/{org_id}/status/nodes/{node_id}', { params: { path }, signal })),
        allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/status/connections', { params: { path: { org_id: org.id }, query: { node_id: id, limit, offset } }, signal }))),
      ])
      return { config, status, agents: peersBy(connections.items, 'node').get(id) ?? [] }
    },
    [org.id, id],
  )
  if (!node.data) return node.error ? <ProblemAlert error={node.error} /> : <Loading />
  const { config: n, status: st, agents } = node.data
  const canWrite = can(org.role, 'nodes.write')
  return (
    <section>
      <PageHeader title={n.name}>
        {can(org.role, 'nodes.toggle') && (
          <HolderToggle kind="node" holder={n} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(n.id, on); node.reload() }} />
        )}
        {canWrite && (
          <>
            <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>
              {t('action.edit')}
            </button>
            <DeleteButton name={n.name} body={<RevocationNote kind="node" action="delete" />} onDelete={() => ops.remove(n.id)} onDone={() => navigate(orgPath(org.id, 'nodes'))} />
          </>
        )}
      </PageHeader>
      <ProblemAlert error={action.error} />
      <ProblemAlert error={node.error} stale />
      {editing && (
        <div class="panel narrow">
          <NodeForm node={n} onSaved={(saved) => { notify(t('notice.saved', { name: saved.name })); setEditing(false); node.reload() }} />
        </div>
      )}
      <dl class="details">
        <dt>{t('field.status')}</dt>
        <dd><StatusBadge status={st.status} /> {st.status_detail}</dd>
        <dt>{t('field.problems')}</dt>
        <dd><ProblemList problems={st.problems} /></dd>
        <dt>{t('field.state')}</dt>
        <dd><EnabledBadge enabled={n.enabled} /></dd>
        <dt>{t('field.publicAddress')}</dt>
        <dd>{n.public_address}</dd>
        <dt>{t('field.tunnelAddress')}</dt>
        <dd>{n.tunnel_address}</dd>
        <dt>{t('field.region')}</dt>
        <dd>{n.region || '—'}</dd>
        <dt>{t('field.weight')}</dt>
        <dd>{n.weight}</dd>
        <dt>{t('field.labels')}</dt>
        <dd><LabelChips labels={n.labels} /></dd>
        <dt>{t('field.software')}</dt>
        <dd>{st.software ?? '—'}</dd>
        <dt>{t('field.startedAt')}</dt>
        <dd>{formatDateTime(st.started_at, locale)}</dd>
        <dt>{t('field.snapshotVersion')}</dt>
        <dd>{st.snapshot_version ? <code>{st.snapshot_version.slice(0, 12)}</code> : '—'}</dd>
        <dt>{t('field.channel')}</dt>
        <dd>{st.channel_open ? t('field.channelOpen') : t('field.channelClosed')}</dd>
        <dt>{t('field.lastSeen')}</dt>
        <dd>{formatDateTime(st.last_seen_at, locale)}</dd>
      </dl>
      <h2>{t('nodes.connectedAgents')}</h2>
      {agents.length === 0 ? <p>{t('peers.none')}</p> : <PeerTable peers={agents} to="agents" caption={t('nodes.connectedAgents')} />}
      <ReadinessCheck node={st} onChanged={node.reload} />
      <div class="section-head">
        <h2>{t('dashboard.traffic')}</h2>
        <RangeSelect />
      </div>
      <TrafficPanel heading="chart.byService" filter={{ by: 'service', node_id: n.id }} />
      <EnrollmentPanel target={{ kind: 'node', id: n.id }} />
      <RecentEvents targetType="node" targetId={n.id} />
    </section>
  )
}
