// Every page of the app and who may see it. Paths are real URLs (deep links and reloads
// work: the control plane answers any of them with index.html).
import type { FunctionComponent } from 'preact'
import type { Params } from '../lib/routes.ts'
import { AcceptInvitation } from '../pages/AcceptInvitation.tsx'
import { AgentDetail, AgentNew, Agents } from '../pages/Agents.tsx'
import { Audit } from '../pages/Audit.tsx'
import { CertificateDetail, CertificateNew, CertificateReplace, Certificates } from '../pages/Certificates.tsx'
import { Dashboard } from '../pages/Dashboard.tsx'
import { Home, NewOrg } from '../pages/Home.tsx'
import { Members } from '../pages/Members.tsx'
import { Monitoring } from '../pages/Monitoring.tsx'
import { NodeDetail, NodeNew, Nodes } from '../pages/Nodes.tsx'
import { Profile } from '../pages/Profile.tsx'
import { ServiceDetail, ServiceEdit, ServiceNew, Services } from '../pages/Services.tsx'
import { SignIn } from '../pages/SignIn.tsx'
import { SignUp } from '../pages/SignUp.tsx'
import { OrgTokens } from '../pages/Tokens.tsx'

export type PageProps = { params: Params }

export interface Route {
  path: string
  /** guest: signed-out only; any: both; user: signed in; org: a member of :org */
  access: 'guest' | 'any' | 'user' | 'org'
  page: FunctionComponent<PageProps>
}

export const ROUTES: readonly Route[] = [
  { path: '/signin', access: 'guest', page: SignIn },
  { path: '/signup', access: 'guest', page: SignUp },
  { path: '/accept-invitation', access: 'any', page: AcceptInvitation },
  { path: '/', access: 'user', page: Home },
  { path: '/profile', access: 'user', page: Profile },
  { path: '/orgs/new', access: 'user', page: NewOrg },
  { path: '/orgs/:org', access: 'org', page: Dashboard },
  { path: '/orgs/:org/services', access: 'org', page: Services },
  { path: '/orgs/:org/services/new', access: 'org', page: ServiceNew },
  { path: '/orgs/:org/services/:id', access: 'org', page: ServiceDetail },
  { path: '/orgs/:org/services/:id/edit', access: 'org', page: ServiceEdit },
  { path: '/orgs/:org/nodes', access: 'org', page: Nodes },
  { path: '/orgs/:org/nodes/new', access: 'org', page: NodeNew },
  { path: '/orgs/:org/nodes/:id', access: 'org', page: NodeDetail },
  { path: '/orgs/:org/agents', access: 'org', page: Agents },
  { path: '/orgs/:org/agents/new', access: 'org', page: AgentNew },
  { path: '/orgs/:org/agents/:id', access: 'org', page: AgentDetail },
  { path: '/orgs/:org/certificates', access: 'org', page: Certificates },
  { path: '/orgs/:org/certificates/new', access: 'org', page: CertificateNew },
  { path: '/orgs/:org/certificates/:id', access: 'org', page: CertificateDetail },
  { path: '/orgs/:org/certificates/:id/replace', access: 'org', page: CertificateReplace },
  { path: '/orgs/:org/members', access: 'org', page: Members },
  { path: '/orgs/:org/tokens', access: 'org', page: OrgTokens },
  { path: '/orgs/:org/monitoring', access: 'org', page: Monitoring },
  { path: '/orgs/:org/audit', access: 'org', page: Audit },
]
