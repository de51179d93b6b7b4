import { unwrap } from '../api/client.ts'
import { useApp } from '../app/context.ts'
import { useAction } from '../app/hooks.ts'
import { Link } from '../components/Link.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { orgPath } from '../lib/routes.ts'
import { SignUpForm } from './SignUp.tsx'

/** The invitation link (public_url/accept-invitation#token=…): the token stays in the
 * fragment, which browsers never send to a server. */
export function invitationToken(hash: string): string | null {
  const token = new URLSearchParams(hash.replace(/^#/, '')).get('token')
  return token && token.length <= 200 ? token : null
}

export function AcceptInvitation() {
  const { api, t, me, location, refreshMe, navigate } = useApp()
  const action = useAction()
  const token = invitationToken(location.hash)
  if (!token) {
    return (
      <section class="narrow">
        <PageHeader title={t('invite.title')} />
        <div class="alert alert-error" role="alert">
          {t('invite.noToken')}
        </div>
      </section>
    )
  }
  if (!me) {
    const back = `/accept-invitation${location.hash}`
    return (
      <section class="narrow">
        <PageHeader title={t('invite.title')} />
        <p>{t('invite.signUp')}</p>
        <SignUpForm invitation={token} />
        <p>
          {t('invite.haveAccount')} <Link href={`/signin?next=${encodeURIComponent(back)}`}>{t('signIn.title')}</Link>
        </p>
      </section>
    )
  }
  const accept = () =>
    action.run(async () => {
      const org = await unwrap(api.POST('/api/v1/invitations/accept', { body: { token } }))
      await refreshMe()
      navigate(orgPath(org.id), { replace: true })
    })
  return (
    <section class="narrow">
      <PageHeader title={t('invite.title')} />
      <ProblemAlert error={action.error} />
      <p>{t('invite.join', { email: me.user.email })}</p>
      <button type="button" class="primary" disabled={action.busy} onClick={accept}>
        {t('invite.accept')}
      </button>
    </section>
  )
}
