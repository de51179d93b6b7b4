import { unwrap } from '../api/client.ts'
import { useApp, useOrg } from '../app/context.ts'
import { PageHeader } from '../components/PageHeader.tsx'
import { TokenList } from '../components/TokenList.tsx'
import { can, serviceTokenRoles } from '../lib/permissions.ts'

/** Service accounts: tokens that belong to the organisation, with a role (at most admin). */
export function OrgTokens() {
  const { api, t } = useApp()
  const org = useOrg()
  const path = { org_id: org.id }
  return (
    <section>
      <PageHeader title={t('tokens.orgTitle')} />
      <p>{t('tokens.orgIntro')}</p>
      {can(org.role, 'tokens.manage') ? (
        <TokenList
          caption={t('tokens.orgTitle')}
          deps={[org.id]}
          roles={serviceTokenRoles()}
          load={(signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/tokens', { params: { path, query: { limit: 200 } }, signal }))}
          create={(body) => unwrap(api.POST('/api/v1/orgs/{org_id}/tokens', { params: { path }, body }))}
          revoke={(id) => unwrap(api.DELETE('/api/v1/orgs/{org_id}/tokens/{token_id}', { params: { path: { ...path, token_id: id } } }))}
        />
      ) : (
        <p class="alert">{t('common.notAllowed')}</p>
      )}
    </section>
  )
}
