// The agent ↔ ingress node matrix (GET …/status/connections) seen from one side: for each
// agent the nodes it is connected to, or for each node its agents. Each pair is reported by
// the agent, the node, or both; one side alone is worth a look (docs/control-plane.md).
import type { Connection } from '../api/types.ts'

export type SeenBy = 'both' | 'agent' | 'node'

export interface Peer {
  id: string
  name: string
  /** since when, as the viewing side reported it (else the other side) */
  since: string | null
  /** round-trip time in ms, likewise */
  rttMs: number | null
  seenBy: SeenBy
}

function seenBy(c: Connection): SeenBy | null {
  if (c.seen_by_agent && c.seen_by_node) return 'both'
  if (c.seen_by_agent) return 'agent'
  if (c.seen_by_node) return 'node'
  return null
}

/** Peers by the id of the side we look from (`agent`: its nodes; `node`: its agents), each
 * list by name. A pair neither side reports is left out. */
export function peersBy(connections: readonly Connection[], from: 'agent' | 'node'): Map<string, Peer[]> {
  const out = new Map<string, Peer[]>()
  for (const c of connections) {
    const seen = seenBy(c)
    if (!seen) continue
    const [own, other] = from === 'agent' ? [c.seen_by_agent, c.seen_by_node] : [c.seen_by_node, c.seen_by_agent]
    const key = from === 'agent' ? c.agent_id : c.node_id
    const peer: Peer = {
      id: from === 'agent' ? c.node_id : c.agent_id,
      name: from === 'agent' ? c.node_name : c.agent_name,
      since: own?.since ?? other?.since ?? null,
      rttMs: own?.rtt_ms ?? other?.rtt_ms ?? null,
      seenBy: seen,
    }
    out.set(key, [...(out.get(key) ?? []), peer])
  }
  for (const peers of out.values()) peers.sort((a, b) => a.name.localeCompare(b.name))
  return out
}
