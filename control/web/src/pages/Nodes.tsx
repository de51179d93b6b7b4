import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import type { EnrollmentTokenCreated, Node, NodeIn } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useAction, useListQuery, useResource } from '../app/hooks.ts'
import type { PageProps } from '../app/routes.ts'
import { EmptyState } from '../components/EmptyState.tsx'
import { EnrollmentPanel, useCreateEnrollment } from '../components/Enrollment.tsx'
import { Form, TextAreaField, TextField } from '../components/Field.tsx'
import { LabelChips } from '../components/Labels.tsx'
import { Link } from '../components/Link.tsx'
import { ListControls } from '../components/ListControls.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { Pagination } from '../components/Pagination.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { RecentEvents } from '../components/RecentEvents.tsx'
import { DeleteButton, ToggleButton } from '../components/RowActions.tsx'
import { EnabledBadge, StatusBadge } from '../components/StatusBadge.tsx'
import { TrafficChart } from '../components/TrafficChart.tsx'
import { formatDateTime, formatRelative } from '../lib/format.ts'
import { formatLabels, parseLabels } from '../lib/labels.ts'
import { toApiQuery } from '../lib/listQuery.ts'
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
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/nodes', { params: { path: { org_id: org.id }, query: toApiQuery(query) }, signal })),
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
                <th scope="col" class="wide-only">{t('field.publicAddress')}</th>
                <th scope="col" class="wide-only">{t('field.weight')}</th>
                <th scope="col">{t('field.state')}</th>
                <th scope="col" class="wide-only">{t('field.lastSeen')}</th>
                {canToggle && <th scope="col" class="wide-only">{t('common.actions')}</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((n) => (
                <tr key={n.id}>
                  <td>
                    <Link href={orgPath(org.id, 'nodes', n.id)}>{n.name}</Link>
                  </td>
                  <td><StatusBadge status={n.status} detail={n.status_detail} /></td>
                  <td class="wide-only">{n.region || '—'}</td>
                  <td class="wide-only">{n.public_address}</td>
                  <td class="wide-only">{n.weight}</td>
                  <td><EnabledBadge enabled={n.enabled} /></td>
                  <td class="wide-only">{formatRelative(n.last_seen_at, locale)}</td>
                  {canToggle && (
                    <td class="row-actions wide-only">
                      <ToggleButton enabled={n.enabled} name={n.name} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(n.id, on); list.reload() }} />
                      {canWrite && <DeleteButton name={n.name} onDelete={() => ops.remove(n.id)} onDone={list.reload} />}
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
  const { t, notify } = useApp()
  const org = useOrg()
  const createToken = useCreateEnrollment()
  const [created, setCreated] = useState<{ node: Node; token: EnrollmentTokenCreated | null } | null>(null)
  if (!can(org.role, 'nodes.write')) return <p class="alert">{t('common.notAllowed')}</p>
  if (created) {
    return (
      <section>
        <PageHeader title={t('nodes.added', { name: created.node.name })} />
        <EnrollmentPanel target={{ kind: 'node', id: created.node.id }} created={created.token} />
        <p>
          <Link href={orgPath(org.id, 'nodes', created.node.id)}>{t('nodes.open', { name: created.node.name })}</Link>
        </p>
      </section>
    )
  }
  const saved = async (node: Node) => {
    const token = can(org.role, 'enrollment.manage') ? await createToken({ kind: 'node', id: node.id }).catch(() => null) : null
    notify(t('notice.created', { name: node.name }))
    setCreated({ node, token })
  }
  return (
    <section class="narrow">
      <PageHeader title={t('nodes.new')} />
      <NodeForm onSaved={saved} />
    </section>
  )
}

export function NodeDetail({ params }: PageProps) {
  const { api, t, locale, navigate, notify } = useApp()
  const org = useOrg()
  const ops = useNodeOps()
  const action = useAction()
  const [editing, setEditing] = useState(false)
  const node = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/nodes/{node_id}', { params: { path: { org_id: org.id, node_id: params.id ?? '' } }, signal })),
    [org.id, params.id],
  )
  const n = node.data
  if (!n) return node.error ? <ProblemAlert error={node.error} /> : <Loading />
  const canWrite = can(org.role, 'nodes.write')
  return (
    <section>
      <PageHeader title={n.name}>
        {can(org.role, 'nodes.toggle') && (
          <ToggleButton enabled={n.enabled} name={n.name} run={action.run} busy={action.busy} onToggle={async (on) => { await ops.toggle(n.id, on); node.reload() }} />
        )}
        {canWrite && (
          <>
            <button type="button" aria-expanded={editing} onClick={() => setEditing(!editing)}>
              {t('action.edit')}
            </button>
            <DeleteButton name={n.name} onDelete={() => ops.remove(n.id)} onDone={() => navigate(orgPath(org.id, 'nodes'))} />
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
        <dd><StatusBadge status={n.status} /> {n.status_detail}</dd>
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
        <dt>{t('field.version')}</dt>
        <dd>{n.version ?? '—'}</dd>
        <dt>{t('field.lastSeen')}</dt>
        <dd>{formatDateTime(n.last_seen_at, locale)}</dd>
      </dl>
      <h2>{t('dashboard.traffic')}</h2>
      <div class="charts">
        <TrafficChart title={t('chart.requests')} series={null} />
        <TrafficChart title={t('chart.bandwidth')} series={null} />
      </div>
      <EnrollmentPanel target={{ kind: 'node', id: n.id }} />
      <RecentEvents targetType="node" targetId={n.id} />
    </section>
  )
}
