import { useState } from 'preact/hooks'
import { fieldErrors } from '../api/problem.ts'
import type { Page, Role, Token, TokenCreated } from '../api/types.ts'
import { useApp } from '../app/context.ts'
import { useAction, useResource } from '../app/hooks.ts'
import { formatDateTime } from '../lib/format.ts'
import { EmptyState } from './EmptyState.tsx'
import { Form, SelectField, TextField } from './Field.tsx'
import { Loading } from './Loading.tsx'
import { ProblemAlert } from './ProblemAlert.tsx'
import { DeleteButton } from './RowActions.tsx'
import { SecretOnce } from './SecretOnce.tsx'

export interface NewToken {
  name: string
  expires_in_days: number
  role?: Role
}

interface Props {
  caption: string
  load(signal: AbortSignal): Promise<Page<Token>>
  create(body: NewToken): Promise<TokenCreated>
  revoke(id: string): Promise<unknown>
  /** Service-account tokens carry a role; personal ones act as you. */
  roles?: Role[]
  deps: readonly unknown[]
}

/** API tokens: create one (its secret is shown once), list them, revoke. */
export function TokenList({ caption, load, create, revoke, roles, deps }: Props) {
  const { t, locale } = useApp()
  const tokens = useResource(load, deps)
  const [name, setName] = useState('')
  const [days, setDays] = useState('90')
  const [role, setRole] = useState<Role>('viewer')
  const [created, setCreated] = useState<TokenCreated | null>(null)
  const action = useAction()
  const errors = fieldErrors(action.error)
  const submit = () =>
    action.run(async () => {
      setCreated(await create({ name: name.trim(), expires_in_days: Number(days), ...(roles ? { role } : {}) }))
      setName('')
      tokens.reload()
    })
  return (
    <>
      {created && <SecretOnce label={t('tokens.secret', { name: created.name })} value={created.token} onDone={() => setCreated(null)} />}
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('tokens.new')}>
        <div class="row">
          <TextField id="token-name" label={t('field.name')} required value={name} onValue={setName} error={errors.name} />
          {roles && <SelectField<Role> id="token-role" label={t('field.role')} value={role} onValue={setRole} options={roles.map((r) => ({ value: r, label: t(`role.${r}`) }))} error={errors.role} />}
          <TextField id="token-days" label={t('tokens.days')} type="number" min="1" max="365" value={days} onValue={setDays} error={errors.expires_in_days} />
        </div>
        <button type="submit" class="primary" disabled={action.busy}>
          {t('tokens.create')}
        </button>
      </Form>
      <ProblemAlert error={tokens.error} stale={tokens.data !== undefined} />
      {!tokens.data ? (
        tokens.error ? null : <Loading />
      ) : tokens.data.items.length === 0 ? (
        <EmptyState title={t('tokens.empty')} />
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">{caption}</caption>
            <thead>
              <tr>
                <th scope="col">{t('field.name')}</th>
                <th scope="col">{t('field.prefix')}</th>
                {roles && <th scope="col">{t('field.role')}</th>}
                <th scope="col" class="wide-only">{t('field.expires')}</th>
                <th scope="col" class="wide-only">{t('tokens.lastUsed')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.items.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td><code>{k.prefix}…</code></td>
                  {roles && <td>{k.role ? t(`role.${k.role}`) : '—'}</td>}
                  <td class="wide-only">{formatDateTime(k.expires_at, locale)}</td>
                  <td class="wide-only">{formatDateTime(k.last_used_at, locale)}</td>
                  <td>{k.revoked_at ? t('tokens.revoked') : <DeleteButton name={k.name} label={t('action.revoke')} onDelete={() => revoke(k.id)} onDone={tokens.reload} />}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  )
}
