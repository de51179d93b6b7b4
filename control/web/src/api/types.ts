// Names for the generated schema types (src/api/schema.d.ts comes from the control plane's
// OpenAPI document: `./dev web` regenerates it).
import type { components } from './schema'

type S = components['schemas']
export type Role = S['Role']
export type User = S['UserOut']
export type SessionInfo = S['SessionInfo']
export type Me = S['MeOut']
export type Membership = S['MembershipOut']
export type Org = S['OrgOut']
export type Member = S['MemberOut']
export type Invitation = S['InvitationOut']
export type InvitationCreated = S['InvitationCreated']
export type Service = S['ServiceOut']
export type ServiceIn = S['ServiceIn']
export type ServicePatch = S['ServicePatch']
export type Node = S['NodeOut']
export type NodeIn = S['NodeIn']
export type NodePatch = S['NodePatch']
export type Agent = S['AgentOut']
export type AgentIn = S['AgentIn']
export type AgentPatch = S['AgentPatch']
export type Status = Node['status']
export type Token = S['TokenOut']
export type TokenCreated = S['TokenCreated']
export type EnrollmentToken = S['EnrollmentTokenOut']
export type EnrollmentTokenCreated = S['EnrollmentTokenCreated']
export type AuditEvent = S['AuditEventOut']
export type UserSession = S['SessionOut']
export type Problem = S['Problem']
export type StatusSummary = S['StatusSummary']
export type StatusCounts = S['StatusCounts']
export type NodeStatus = S['NodeStatusOut']
export type AgentStatus = S['AgentStatusOut']
export type HealthCheck = S['HealthCheckOut']
export type Connection = S['ConnectionOut']
export type ConnectionSide = S['ConnectionSide']
export type Traffic = S['TrafficOut']
export type TrafficSeries = S['TrafficSeries']
export type TrafficPoint = S['TrafficPoint']

export interface Page<T> {
  items: T[]
  total: number
  limit: number
  offset: number
}
