import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import { useApp } from '../app/context.ts'
import { useAction, useResource } from '../app/hooks.ts'
import { AuditTable } from '../components/AuditTable.tsx'
import { ConfirmDialog } from '../components/ConfirmDialog.tsx'
import { EmptyState } from '../components/EmptyState.tsx'
import { Form, TextField } from '../components/Field.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { DeleteButton } from '../components/RowActions.tsx'
import { TokenList } from '../components/TokenList.tsx'
import { formatDateTime } from '../lib/format.ts'
import { oidcErrorMessage } from '../lib/oidc.ts'

function NameForm() {
  const { api, t, me, refreshMe, notify } = useApp()
  const [name, setName] = useState(me?.user.name ?? '')
  const action = useAction()
  const submit = () =>
    action.run(async () => {
      await unwrap(api.PATCH('/api/v1/me', { body: { name } }))
      await refreshMe()
      notify(t('profile.nameSaved'))
    })
  return (
    <section class="panel">
      <h2>{t('profile.account')}</h2>
      <p>{t('profile.email', { email: me?.user.email ?? '' })}</p>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('profile.account')}>
        <TextField id="profile-name" label={t('field.name')} autoComplete="name" value={name} onValue={setName} error={fieldErrors(action.error).name} />
        <button type="submit" disabled={action.busy}>
          {t('common.save')}
        </button>
      </Form>
    </section>
  )
}

function PasswordForm() {
  const { api, t, me, refreshSession, notify } = useApp()
  const [current, setCurrent] = useState('')
  const [next, setNext] = useState('')
  const [again, setAgain] = useState('')
  const [mismatch, setMismatch] = useState(false)
  const action = useAction()
  const errors = fieldErrors(action.error)
  const submit = () => {
    setMismatch(next !== again)
    if (next !== again) return
    void action.run(async () => {
      await unwrap(api.POST('/api/v1/me/password', { body: { current_password: current, new_password: next } }))
      // The session got a new id, so a new CSRF token: fetch it before anything else.
      await refreshSession()
      setCurrent('')
      setNext('')
      setAgain('')
      notify(t('profile.passwordChanged'))
    })
  }
  return (
    <section class="panel">
      <h2>{t('profile.password')}</h2>
      <p class="hint">{t('profile.passwordNote')}</p>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('profile.password')}>
        <input type="text" name="username" autoComplete="username" value={me?.user.email ?? ''} hidden readOnly />
        <TextField id="current-password" type="password" autoComplete="current-password" label={t('profile.currentPassword')} value={current} onValue={setCurrent} error={errors.current_password} />
        <TextField id="new-password" type="password" autoComplete="new-password" label={t('profile.newPassword')} hint={t('field.passwordHint')} value={next} onValue={setNext} error={errors.new_password} />
        <TextField id="new-password-again" type="password" autoComplete="new-password" label={t('profile.newPasswordAgain')} value={again} onValue={setAgain} error={mismatch ? t('profile.mismatch') : undefined} />
        <button type="submit" disabled={action.busy}>
          {t('profile.changePassword')}
        </button>
      </Form>
    </section>
  )
}

/** Unlink a provider after a confirmation dialog; the dialog shows a refusal (409: the account's
 * only way to sign in). */
function UnlinkButton({ slug, label, onDone }: { slug: string; label: string; onDone(): void }) {
  const { api, t, notify } = useApp()
  const [open, setOpen] = useState(false)
  const action = useAction()
  const confirm = async () => {
    if (await action.run(() => unwrap(api.DELETE('/api/v1/me/oidc-identities/{provider}', { params: { path: { provider: slug } } })))) {
      setOpen(false)
      notify(t('profile.unlinked', { label }))
      onDone()
    }
  }
  const cancel = () => {
    action.clear()
    setOpen(false)
  }
  return (
    <>
      <button type="button" class="danger-outline" onClick={() => setOpen(true)} aria-label={t('profile.unlinkNamed', { label })}>
        {t('profile.unlink')}
      </button>
      <ConfirmDialog open={open} title={t('profile.unlinkTitle', { label })} confirmLabel={t('profile.unlink')} busy={action.busy} onConfirm={() => void confirm()} onCancel={cancel}>
        <p>{t('profile.unlinkBody', { label })}</p>
        <ProblemAlert error={action.error} />
      </ConfirmDialog>
    </>
  )
}

/** OpenID providers: the ones linked to this account, and a button to link each other one (the
 * browser goes to the provider and comes back here with ?oidc_linked= or ?oidc_error=). */
function Providers() {
  const { api, t, locale, location } = useApp()
  const action = useAction()
  const providers = useResource((signal) => unwrap(api.GET('/api/v1/auth/oidc/providers', { signal })), [], { poll: false })
  const linked = useResource((signal) => unwrap(api.GET('/api/v1/me/oidc-identities', { signal })), [])
  const query = new URLSearchParams(location.search)
  const error = oidcErrorMessage(query.get('oidc_error'))
  const justLinked = providers.data?.find((p) => p.slug === query.get('oidc_linked'))
  if (!providers.data || providers.data.length === 0) return null
  const link = (slug: string) =>
    action.run(async () => {
      const started = await unwrap(api.POST('/api/v1/auth/oidc/{provider}/link', { params: { path: { provider: slug } }, body: { next: '/profile' } }))
      window.location.assign(started.url)
    })
  return (
    <section class="panel">
      <h2>{t('profile.providers')}</h2>
      <p class="hint">{t('profile.providersIntro')}</p>
      {error && (
        <div class="alert alert-error" role="alert">
          {t(error)}
        </div>
      )}
      {justLinked && (
        <p class="alert" role="status">
          {t('profile.linkedNow', { label: justLinked.label })}
        </p>
      )}
      <ProblemAlert error={action.error ?? linked.error} />
      <ul class="plain">
        {providers.data.map((p) => {
          const mine = linked.data?.find((x) => x.provider === p.slug)
          return (
            <li key={p.slug}>
              <strong>{p.label}</strong>{' '}
              {mine ? (
                <>
                  <span>{t('profile.linkedAs', { email: mine.email || '—', when: formatDateTime(mine.created_at, locale) })}</span>{' '}
                  <UnlinkButton slug={p.slug} label={p.label} onDone={linked.reload} />
                </>
              ) : (
                <button type="button" disabled={action.busy || !linked.data} onClick={() => void link(p.slug)}>
                  {t('profile.link', { label: p.label })}
                </button>
              )}
            </li>
          )
        })}
      </ul>
    </section>
  )
}

function Sessions() {
  const { api, t, locale } = useApp()
  const sessions = useResource((signal) => unwrap(api.GET('/api/v1/me/sessions', { signal })), [])
  return (
    <section class="panel">
      <h2>{t('profile.sessions')}</h2>
      <ProblemAlert error={sessions.error} stale={sessions.data !== undefined} />
      {!sessions.data ? (
        sessions.error ? null : <Loading />
      ) : (
        <ul class="plain">
          {sessions.data.map((s) => (
            <li key={s.id}>
              <strong>{s.user_agent ?? t('profile.unknownClient')}</strong> · {s.client_ip ?? '—'} · {t('profile.lastSeen', { when: formatDateTime(s.last_seen_at, locale) })}{' '}
              {s.current ? (
                <span class="badge on">{t('profile.thisSession')}</span>
              ) : (
                <DeleteButton
                  name={s.user_agent ?? s.id}
                  label={t('profile.endSession')}
                  onDelete={() => unwrap(api.DELETE('/api/v1/me/sessions/{session_id}', { params: { path: { session_id: s.id } } }))}
                  onDone={sessions.reload}
                />
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}

function SecurityEvents() {
  const { api, t } = useApp()
  const events = useResource((signal) => unwrap(api.GET('/api/v1/me/audit', { params: { query: { limit: 10 } }, signal })), [])
  return (
    <section class="panel">
      <h2>{t('profile.security')}</h2>
      <ProblemAlert error={events.error} stale={events.data !== undefined} />
      {events.data &&
        (events.data.items.length === 0 ? <EmptyState title={t('audit.none')} /> : <AuditTable events={events.data.items} caption={t('profile.security')} compact />)}
    </section>
  )
}

export function Profile() {
  const { api, t } = useApp()
  return (
    <section>
      <PageHeader title={t('profile.title')} />
      <NameForm />
      <PasswordForm />
      <Providers />
      <Sessions />
      <section class="panel">
        <h2>{t('profile.tokens')}</h2>
        <p class="hint">{t('profile.tokensIntro')}</p>
        <TokenList
          caption={t('profile.tokens')}
          deps={[]}
          load={(signal) => unwrap(api.GET('/api/v1/me/tokens', { params: { query: { limit: 200 } }, signal }))}
          create={(body) => unwrap(api.POST('/api/v1/me/tokens', { body }))}
          revoke={(id) => unwrap(api.DELETE('/api/v1/me/tokens/{token_id}', { params: { path: { token_id: id } } }))}
        />
      </section>
      <SecurityEvents />
    </section>
  )
}
