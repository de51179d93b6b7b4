import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import { useApp } from '../app/context.ts'
import { useAction } from '../app/hooks.ts'
import { Form, TextField } from '../components/Field.tsx'
import { Link } from '../components/Link.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'

/** Create an account: the very first one (it gets a new organisation), one with an
 * invitation (`invitation` set: it joins that organisation), or open sign-up when enabled. */
export function SignUpForm({ invitation }: { invitation?: string }) {
  const { api, t, signedIn, navigate } = useApp()
  const [email, setEmail] = useState('')
  const [name, setName] = useState('')
  const [password, setPassword] = useState('')
  const [orgName, setOrgName] = useState('')
  const action = useAction()
  const errors = fieldErrors(action.error)
  const submit = () =>
    action.run(async () => {
      const body = {
        email,
        password,
        name,
        ...(invitation ? { invitation_token: invitation } : orgName.trim() ? { organisation_name: orgName } : {}),
      }
      await signedIn(await unwrap(api.POST('/api/v1/auth/signup', { body })))
      navigate('/', { replace: true })
    })
  return (
    <>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('signUp.title')}>
        <TextField id="email" label={t('field.email')} type="email" autoComplete="email" required value={email} onValue={setEmail} error={errors.email} />
        <TextField id="name" label={t('field.name')} autoComplete="name" value={name} onValue={setName} error={errors.name} />
        <TextField
          id="password"
          label={t('field.password')}
          type="password"
          autoComplete="new-password"
          required
          hint={t('field.passwordHint')}
          value={password}
          onValue={setPassword}
          error={errors.password}
        />
        {!invitation && (
          <TextField
            id="organisation_name"
            label={t('field.orgName')}
            hint={t('signUp.orgHint')}
            value={orgName}
            onValue={setOrgName}
            error={errors.organisation_name}
          />
        )}
        <button type="submit" class="primary" disabled={action.busy}>
          {t('signUp.submit')}
        </button>
      </Form>
    </>
  )
}

export function SignUp() {
  const { t } = useApp()
  return (
    <section class="narrow">
      <PageHeader title={t('signUp.title')} />
      <p>{t('signUp.intro')}</p>
      <SignUpForm />
      <p>
        {t('signUp.haveAccount')} <Link href="/signin">{t('signIn.title')}</Link>
      </p>
    </section>
  )
}
