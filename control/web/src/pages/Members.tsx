import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import type { InvitationCreated, Member, Role } from '../api/types.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useAction, useResource } from '../app/hooks.ts'
import { EmptyState } from '../components/EmptyState.tsx'
import { Form, SelectField, TextField } from '../components/Field.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { DeleteButton } from '../components/RowActions.tsx'
import { SecretOnce } from '../components/SecretOnce.tsx'
import { formatDateTime } from '../lib/format.ts'
import { assignableRoles, can, ROLES } from '../lib/permissions.ts'

function RoleSelect({ member, onChange, busy }: { member: Member; onChange(role: Role): void; busy: boolean }) {
  const { t } = useApp()
  const org = useOrg()
  const roles = assignableRoles(org.role)
  // Only an owner may change an owner (or make one).
  if (!roles.includes(member.role)) return <>{t(`role.${member.role}`)}</>
  return (
    <select
      value={member.role}
      disabled={busy}
      aria-label={t('members.roleOf', { name: member.email })}
      onChange={(e) => onChange(e.currentTarget.value as Role)}
    >
      {roles.map((r) => (
        <option key={r} value={r}>
          {t(`role.${r}`)}
        </option>
      ))}
    </select>
  )
}

function MemberTable() {
  const { api, t, locale, me, refreshMe, navigate } = useApp()
  const org = useOrg()
  const members = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/members', { params: { path: { org_id: org.id }, query: { limit: 200 } }, signal })),
    [org.id],
  )
  const action = useAction()
  const manage = can(org.role, 'members.manage')
  const setRole = (m: Member, role: Role) =>
    action.run(async () => {
      await unwrap(api.PATCH('/api/v1/orgs/{org_id}/members/{user_id}', { params: { path: { org_id: org.id, user_id: m.user_id } }, body: { role } }))
      members.reload()
      if (m.user_id === me?.user.id) await refreshMe()
    })
  const remove = (m: Member) => unwrap(api.DELETE('/api/v1/orgs/{org_id}/members/{user_id}', { params: { path: { org_id: org.id, user_id: m.user_id } } }))
  const afterRemove = async (m: Member) => {
    if (m.user_id !== me?.user.id) return members.reload()
    await refreshMe()
    navigate('/')
  }
  if (!members.data) return members.error ? <ProblemAlert error={members.error} /> : <Loading />
  return (
    <>
      <ProblemAlert error={action.error} />
      <ProblemAlert error={members.error} stale />
      <div class="table-wrap">
        <table>
          <caption class="visually-hidden">{t('members.title')}</caption>
          <thead>
            <tr>
              <th scope="col">{t('field.email')}</th>
              <th scope="col" class="wide-only">{t('field.name')}</th>
              <th scope="col">{t('field.role')}</th>
              <th scope="col" class="wide-only">{t('members.joined')}</th>
              <th scope="col">{t('common.actions')}</th>
            </tr>
          </thead>
          <tbody>
            {members.data.items.map((m) => {
              const self = m.user_id === me?.user.id
              return (
                <tr key={m.user_id}>
                  <td>
                    {m.email} {self && <span class="hint">({t('members.you')})</span>}
                  </td>
                  <td class="wide-only">{m.name || '—'}</td>
                  <td>{manage ? <RoleSelect member={m} busy={action.busy} onChange={(r) => void setRole(m, r)} /> : t(`role.${m.role}`)}</td>
                  <td class="wide-only">{formatDateTime(m.joined_at, locale)}</td>
                  <td>
                    {(manage || self) && (
                      <DeleteButton name={m.email} label={self ? t('members.leave') : t('members.remove')} onDelete={() => remove(m)} onDone={() => void afterRemove(m)} />
                    )}
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      </div>
    </>
  )
}

function Invitations() {
  const { api, t, locale } = useApp()
  const org = useOrg()
  const roles = assignableRoles(org.role)
  const [role, setRole] = useState<Role>('viewer')
  const [email, setEmail] = useState('')
  const [hours, setHours] = useState('')
  const [created, setCreated] = useState<InvitationCreated | null>(null)
  const action = useAction()
  const errors = fieldErrors(action.error)
  const list = useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/invitations', { params: { path: { org_id: org.id }, query: { limit: 200 } }, signal })),
    [org.id],
  )
  const submit = () =>
    action.run(async () => {
      const body = { role, ...(email.trim() ? { email: email.trim() } : {}), ...(hours ? { expires_in_hours: Number(hours) } : {}) }
      setCreated(await unwrap(api.POST('/api/v1/orgs/{org_id}/invitations', { params: { path: { org_id: org.id } }, body })))
      setEmail('')
      list.reload()
    })
  const pending = (list.data?.items ?? []).filter((i) => !i.accepted_at)
  return (
    <section class="panel">
      <h2>{t('members.invite')}</h2>
      {created && <SecretOnce label={t('members.inviteLink')} value={created.link} onDone={() => setCreated(null)} />}
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('members.invite')}>
        <div class="row">
          <SelectField<Role> id="invite-role" label={t('field.role')} value={role} onValue={setRole} options={roles.map((r) => ({ value: r, label: t(`role.${r}`) }))} error={errors.role} />
          <TextField id="invite-email" label={t('members.inviteEmail')} type="email" value={email} onValue={setEmail} error={errors.email} hint={t('members.inviteEmailHint')} />
          <TextField id="invite-hours" label={t('members.inviteHours')} type="number" min="1" max="720" value={hours} onValue={setHours} error={errors.expires_in_hours} />
        </div>
        <button type="submit" class="primary" disabled={action.busy}>
          {t('members.createInvite')}
        </button>
      </Form>
      <h3>{t('members.pending')}</h3>
      <ProblemAlert error={list.error} stale={list.data !== undefined} />
      {list.data && pending.length === 0 ? (
        <EmptyState title={t('members.noPending')} />
      ) : (
        <ul class="plain">
          {pending.map((i) => (
            <li key={i.id}>
              {t(`role.${i.role}`)} · {i.email ?? t('members.anyone')} · {t('members.expires', { when: formatDateTime(i.expires_at, locale) })}{' '}
              <DeleteButton
                name={i.email ?? t(`role.${i.role}`)}
                label={t('action.revoke')}
                onDelete={() => unwrap(api.DELETE('/api/v1/orgs/{org_id}/invitations/{invitation_id}', { params: { path: { org_id: org.id, invitation_id: i.id } } }))}
                onDone={list.reload}
              />
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}

/** Renaming the organisation (owners: org.update). */
function OrgName() {
  const { api, t, refreshMe, notify } = useApp()
  const org = useOrg()
  const [name, setName] = useState(org.name)
  const action = useAction()
  const submit = () =>
    action.run(async () => {
      const saved = await unwrap(api.PATCH('/api/v1/orgs/{org_id}', { params: { path: { org_id: org.id } }, body: { name } }))
      await refreshMe()
      notify(t('notice.saved', { name: saved.name }))
    })
  return (
    <section class="panel">
      <h2>{t('org.settings')}</h2>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('org.settings')}>
        <TextField id="org-rename" label={t('field.orgName')} required value={name} onValue={setName} error={fieldErrors(action.error).name} />
        <button type="submit" disabled={action.busy}>
          {t('org.rename')}
        </button>
      </Form>
    </section>
  )
}

export function Members() {
  const { t } = useApp()
  const org = useOrg()
  return (
    <section>
      <PageHeader title={t('members.title')} />
      <p class="hint">{t('members.roles', { roles: ROLES.map((r) => t(`role.${r}`)).join(' < ') })}</p>
      <MemberTable />
      {can(org.role, 'invitations.manage') && <Invitations />}
      {can(org.role, 'org.update') && <OrgName />}
    </section>
  )
}
