import type { ComponentChildren } from 'preact'
import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import type { EnrollmentToken, EnrollmentTokenCreated } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useAction, useResource } from '../app/hooks.ts'
import { formatDateTime } from '../lib/format.ts'
import { can } from '../lib/permissions.ts'
import { orgPath } from '../lib/routes.ts'
import { EmptyState } from './EmptyState.tsx'
import { Link } from './Link.tsx'
import { PageHeader } from './PageHeader.tsx'
import { ProblemAlert } from './ProblemAlert.tsx'
import { DeleteButton } from './RowActions.tsx'
import { SecretOnce } from './SecretOnce.tsx'

export type EnrollTarget = { kind: 'node' | 'agent'; id: string }

export function useCreateEnrollment() {
  const { api } = useApp()
  const org = useOrg()
  return (target: EnrollTarget): Promise<EnrollmentTokenCreated> =>
    target.kind === 'node'
      ? unwrap(api.POST('/api/v1/orgs/{org_id}/nodes/{node_id}/enrollment-tokens', { params: { path: { org_id: org.id, node_id: target.id } } }))
      : unwrap(api.POST('/api/v1/orgs/{org_id}/agents/{agent_id}/enrollment-tokens', { params: { path: { org_id: org.id, agent_id: target.id } } }))
}

function tokenState(token: EnrollmentToken, now: number): 'used' | 'revoked' | 'expired' | 'unused' {
  if (token.used_at) return 'used'
  if (token.revoked_at) return 'revoked'
  return new Date(token.expires_at).getTime() <= now ? 'expired' : 'unused'
}

/** The enrollment command with a fresh one-time token, and the tokens made for this node or
 * agent (an unused one can be revoked). Admins only: enrollment.manage. */
export function EnrollmentPanel(props: { target: EnrollTarget; created?: EnrollmentTokenCreated | null }) {
  const org = useOrg()
  return can(org.role, 'enrollment.manage') ? <Panel {...props} /> : null
}

function Panel({ target, created }: { target: EnrollTarget; created?: EnrollmentTokenCreated | null | undefined }) {
  const { api, t, locale } = useApp()
  const org = useOrg()
  const create = useCreateEnrollment()
  const [fresh, setFresh] = useState<EnrollmentTokenCreated | null>(created ?? null)
  const action = useAction()
  const tokens = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/enrollment-tokens', { params: { path: { org_id: org.id }, query: { limit: 200 } }, signal })),
    [org.id],
  )
  const mine = (tokens.data?.items ?? []).filter((k) => (target.kind === 'node' ? k.node_id : k.agent_id) === target.id)
  const now = Date.now()
  const make = () =>
    action.run(async () => {
      setFresh(await create(target))
      tokens.reload()
    })
  return (
    <section class="panel">
      <h2>{t('enroll.title')}</h2>
      <p>{t(target.kind === 'node' ? 'enroll.introNode' : 'enroll.introAgent')}</p>
      <ProblemAlert error={action.error} />
      {fresh ? (
        <SecretOnce label={t('enroll.command')} value={fresh.command} onDone={() => setFresh(null)} />
      ) : (
        <button type="button" class="primary" disabled={action.busy} onClick={() => void make()}>
          {t('enroll.create')}
        </button>
      )}
      <h3>{t('enroll.tokens')}</h3>
      <ProblemAlert error={tokens.error} stale={tokens.data !== undefined} />
      {mine.length === 0 ? (
        <EmptyState title={t('enroll.none')} />
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">{t('enroll.tokens')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('field.prefix')}</th>
                <th scope="col">{t('field.state')}</th>
                <th scope="col">{t('field.expires')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {mine.map((k) => {
                const state = tokenState(k, now)
                return (
                  <tr key={k.id}>
                    <td><code>{k.prefix}…</code></td>
                    <td>{t(`enroll.state.${state}`)}</td>
                    <td>{formatDateTime(k.expires_at, locale)}</td>
                    <td>
                      {state === 'unused' && (
                        <DeleteButton
                          name={`${k.prefix}…`}
                          label={t('action.revoke')}
                          onDelete={() => unwrap(api.DELETE('/api/v1/orgs/{org_id}/enrollment-tokens/{enrollment_token_id}', { params: { path: { org_id: org.id, enrollment_token_id: k.id } } }))}
                          onDone={tokens.reload}
                        />
                      )}
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}

const NEW = {
  node: { section: 'nodes', write: 'nodes.write', title: 'nodes.new', added: 'nodes.added', open: 'nodes.open' },
  agent: { section: 'agents', write: 'agents.write', title: 'agents.new', added: 'agents.added', open: 'agents.open' },
} as const

/** The page that adds a node or an agent: its form, then (for admins) the enrollment command
 * with a one-time token made for it, and a link to its page. */
export function NewHolder<T extends { id: string; name: string }>({ kind, form }: { kind: EnrollTarget['kind']; form: (onSaved: (saved: T) => Promise<void>) => ComponentChildren }) {
  const { t, notify } = useApp()
  const org = useOrg()
  const createToken = useCreateEnrollment()
  const [created, setCreated] = useState<{ holder: T; token: EnrollmentTokenCreated | null } | null>(null)
  const keys = NEW[kind]
  if (!can(org.role, keys.write)) return <p class="alert">{t('common.notAllowed')}</p>
  if (created) {
    const { holder, token } = created
    return (
      <section>
        <PageHeader title={t(keys.added, { name: holder.name })} />
        <EnrollmentPanel target={{ kind, id: holder.id }} created={token} />
        <p>
          <Link href={orgPath(org.id, keys.section, holder.id)}>{t(keys.open, { name: holder.name })}</Link>
        </p>
      </section>
    )
  }
  const saved = async (holder: T) => {
    const token = can(org.role, 'enrollment.manage') ? await createToken({ kind, id: holder.id }).catch(() => null) : null
    notify(t('notice.created', { name: holder.name }))
    setCreated({ holder, token })
  }
  return (
    <section class="narrow">
      <PageHeader title={t(keys.title)} />
      {form(saved)}
    </section>
  )
}
