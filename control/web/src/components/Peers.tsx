import { useApp, useOrg } from '../app/context.ts'
import type { Locale, Translate } from '../i18n/i18n.ts'
import type { Peer } from '../lib/connections.ts'
import { formatDateTime, formatNumber, formatRelative } from '../lib/format.ts'
import { orgPath } from '../lib/routes.ts'
import { Link } from './Link.tsx'

function rtt(peer: Peer, locale: Locale, t: Translate): string {
  return peer.rttMs === null ? '' : t('peers.rtt', { ms: formatNumber(peer.rttMs, locale) })
}

/** Connected peers as compact chips: name, round-trip time, and a mark when only one side
 * reports the connection. `to` is the kind of the peers (nodes of an agent, or agents). */
export function PeerChips({ peers, to }: { peers: readonly Peer[] | undefined; to: 'nodes' | 'agents' }) {
  const { t, locale } = useApp()
  const org = useOrg()
  if (!peers || peers.length === 0) return <span class="hint">{t('peers.none')}</span>
  return (
    <ul class="peers">
      {peers.map((p) => (
        <li key={p.id}>
          <Link href={orgPath(org.id, to, p.id)} class="chip">
            {p.name}
          </Link>
          <span class="hint">{rtt(p, locale, t)}</span>
          {p.seenBy !== 'both' && <span class="hint"> {t(`peers.only.${p.seenBy}`)}</span>}
        </li>
      ))}
    </ul>
  )
}

/** The same as a table on a detail page: since when, RTT, who reports it. */
export function PeerTable({ peers, to, caption }: { peers: readonly Peer[]; to: 'nodes' | 'agents'; caption: string }) {
  const { t, locale } = useApp()
  const org = useOrg()
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{t('field.name')}</th>
            <th scope="col">{t('peers.since')}</th>
            <th scope="col">{t('peers.rttTitle')}</th>
            <th scope="col">{t('peers.seenBy')}</th>
          </tr>
        </thead>
        <tbody>
          {peers.map((p) => (
            <tr key={p.id}>
              <td>
                <Link href={orgPath(org.id, to, p.id)}>{p.name}</Link>
              </td>
              <td title={formatDateTime(p.since, locale)}>{formatRelative(p.since, locale)}</td>
              <td>{p.rttMs === null ? '—' : t('peers.rtt', { ms: formatNumber(p.rttMs, locale) })}</td>
              <td>{t(`peers.seen.${p.seenBy}`)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
