import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { useApp } from '../app/context.ts'
import { useAction } from '../app/hooks.ts'
import { Form, TextField } from '../components/Field.tsx'
import { Link } from '../components/Link.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { safeNext } from '../lib/routes.ts'

// Local accounts only: the control plane has no OpenID Connect provider yet, so there is no
// "Sign in with …" button (docs/web.md says where it goes when one is configured).
export function SignIn() {
  const { api, t, signedIn, navigate, location } = useApp()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const action = useAction()
  const next = safeNext(new URLSearchParams(location.search).get('next'))
  const submit = () =>
    action.run(async () => {
      await signedIn(await unwrap(api.POST('/api/v1/auth/login', { body: { email, password } })))
      navigate(next, { replace: true })
    })
  return (
    <section class="narrow">
      <PageHeader title={t('signIn.title')} />
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
      <p>
        {t('signIn.noAccount')} <Link href="/signup">{t('signUp.title')}</Link>
      </p>
    </section>
  )
}
