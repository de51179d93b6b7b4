// Who may do what, from the control plane's own table (src/api/roles.json is generated from
// control/auth/roles.py). The UI hides what a role cannot do; the API refuses it regardless.
import table from '../api/roles.json'
import type { Role } from '../api/types.ts'

export type Permission = keyof typeof table.least_role

const RANK: ReadonlyMap<string, number> = new Map(table.roles.map((role, i) => [role, i]))

export function rank(role: Role): number {
  return RANK.get(role) ?? -1
}

export function can(role: Role | null | undefined, permission: Permission): boolean {
  if (!role) return false
  return rank(role) >= rank(table.least_role[permission] as Role)
}

export const ROLES = table.roles as Role[]

/** Roles `actor` may hand out: owners only by owners (owners.manage). */
export function assignableRoles(actor: Role): Role[] {
  return ROLES.filter((role) => role !== 'owner' || can(actor, 'owners.manage'))
}

/** Roles a service-account token may carry (never above max_service_role). */
export function serviceTokenRoles(): Role[] {
  const max = rank(table.max_service_role as Role)
  return ROLES.filter((role) => rank(role) <= max)
}
