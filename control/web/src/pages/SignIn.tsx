import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { useApp } from '../app/context.ts'
import { useAction, useResource } from '../app/hooks.ts'
import { Form, TextField } from '../components/Field.tsx'
import { Link } from '../components/Link.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { oidcErrorMessage, providerHref } from '../lib/oidc.ts'
import { safeNext } from '../lib/routes.ts'

// A local account's e-mail and password, and one "Sign in with <label>" link per configured
// OpenID provider: a plain navigation to the control plane, which redirects to the provider
// and, at the end, back here with ?oidc_error=<code> if the sign-in was refused (docs/web.md).
export function SignIn() {
  const { api, t, signedIn, navigate, location } = useApp()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const action = useAction()
  const query = new URLSearchParams(location.search)
  const next = safeNext(query.get('next'))
  const oidcError = oidcErrorMessage(query.get('oidc_error'))
  const providers = useResource((signal) => unwrap(api.GET('/api/v1/auth/oidc/providers', { signal })), [], {
    poll: false,
  })
  const submit = () =>
    action.run(async () => {
      await signedIn(await unwrap(api.POST('/api/v1/auth/login', { body: { email, password } })))
      navigate(next, { replace: true })
    })
  return (
    <section class="narrow">
      <PageHeader title={t('signIn.title')} />
      {oidcError && (
        <div class="alert alert-error" role="alert">
          {t(oidcError)}
        </div>
      )}
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('signIn.title')}>
        <TextField id="email" label={t('field.email')} type="email" autoComplete="username" required value={email} onValue={setEmail} />
        <TextField
          id="password"
          label={t('field.password')}
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onValue={setPassword}
        />
        <button type="submit" class="primary" disabled={action.busy}>
          {t('signIn.submit')}
        </button>
      </Form>
      {providers.data && providers.data.length > 0 && (
        <section class="sign-in-providers" aria-label={t('signIn.providers')}>
          <p>{t('signIn.or')}</p>
          <ul class="plain">
            {providers.data.map((provider) => (
              <li key={provider.slug}>
                <a class="button" href={providerHref(provider.login_url, next)}>
                  {t('signIn.with', { label: provider.label })}
                </a>
              </li>
            ))}
          </ul>
        </section>
      )}
      <p>
        {t('signIn.noAccount')} <Link href="/signup">{t('signUp.title')}</Link>
      </p>
    </section>
  )
}
