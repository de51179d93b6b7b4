import { useEffect, useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import { useApp } from '../app/context.ts'
import { useAction } from '../app/hooks.ts'
import { Form, TextField } from '../components/Field.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { orgPath } from '../lib/routes.ts'

/** "/": straight to your first organisation's dashboard, or the form to start one. */
export function Home() {
  const { me, navigate, t } = useApp()
  const first = me?.memberships[0]
  useEffect(() => {
    if (first) navigate(orgPath(first.org_id), { replace: true })
  }, [first, navigate])
  if (first) return null
  return (
    <section class="narrow">
      <PageHeader title={t('home.noOrgTitle')} />
      <p>{t('home.noOrgBody')}</p>
      <NewOrgForm />
    </section>
  )
}

function NewOrgForm() {
  const { api, t, refreshMe, navigate } = useApp()
  const [name, setName] = useState('')
  const action = useAction()
  const submit = () =>
    action.run(async () => {
      const org = await unwrap(api.POST('/api/v1/orgs', { body: { name } }))
      await refreshMe()
      navigate(orgPath(org.id))
    })
  return (
    <>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={t('org.new')}>
        <TextField id="org-name" label={t('field.orgName')} required value={name} onValue={setName} error={fieldErrors(action.error).name} />
        <button type="submit" class="primary" disabled={action.busy}>
          {t('org.create')}
        </button>
      </Form>
    </>
  )
}

export function NewOrg() {
  const { t } = useApp()
  return (
    <section class="narrow">
      <PageHeader title={t('org.new')} />
      <NewOrgForm />
    </section>
  )
}
