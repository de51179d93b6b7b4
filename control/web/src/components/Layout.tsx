import type { ComponentChildren } from 'preact'
import { useRef, useState } from 'preact/hooks'
import { membershipOf, useApp } from '../app/context.ts'
import type { MessageKey } from '../i18n/en.ts'
import { LOCALES, type Locale } from '../i18n/i18n.ts'
import { can, type Permission } from '../lib/permissions.ts'
import { orgPath } from '../lib/routes.ts'
import { Link } from './Link.tsx'

const SECTIONS: readonly { path: string; key: MessageKey; needs?: Permission }[] = [
  { path: '', key: 'nav.dashboard' },
  { path: 'services', key: 'nav.services' },
  { path: 'nodes', key: 'nav.nodes' },
  { path: 'agents', key: 'nav.agents' },
  { path: 'certificates', key: 'nav.certificates', needs: 'certificates.read' },
  { path: 'monitoring', key: 'nav.monitoring' },
  { path: 'members', key: 'nav.members' },
  { path: 'tokens', key: 'nav.tokens', needs: 'tokens.manage' },
  { path: 'audit', key: 'nav.audit', needs: 'audit.read' },
]
const LANGUAGE_NAMES: Record<Locale, string> = { en: 'English', ja: '日本語' }

export function LanguageSwitch() {
  const { locale, setLocale, t } = useApp()
  return (
    <label class="lang">
      <span class="visually-hidden">{t('nav.language')}</span>
      <select value={locale} onChange={(e) => setLocale(e.currentTarget.value as Locale)} aria-label={t('nav.language')}>
        {LOCALES.map((l) => (
          <option key={l} value={l} lang={l}>
            {LANGUAGE_NAMES[l]}
          </option>
        ))}
      </select>
    </label>
  )
}

/** The organisation and section in the current path (/orgs/:org/:section/…), if any. */
export function currentOrg(path: string): { org: string; section: string } | null {
  const [first, org, section] = path.split('/').filter(Boolean)
  if (first !== 'orgs' || !org || org === 'new') return null
  try {
    return { org: decodeURIComponent(org), section: section ?? '' }
  } catch {
    return null
  }
}

function OrgSwitcher({ org, section }: { org: string | null; section: string }) {
  const { me, t, navigate } = useApp()
  if (!me) return null
  const onChange = (value: string) => {
    if (value === '__new') navigate('/orgs/new')
    else navigate(orgPath(value, ...(section ? [section] : [])))
  }
  return (
    <label class="org-switch">
      <span class="visually-hidden">{t('nav.organisation')}</span>
      <select value={org ?? ''} onChange={(e) => onChange(e.currentTarget.value)} aria-label={t('nav.organisation')}>
        {!org && <option value="">{t('nav.chooseOrg')}</option>}
        {me.memberships.map((m) => (
          <option key={m.org_id} value={m.org_id}>
            {m.org_name}
          </option>
        ))}
        <option value="__new">{t('nav.newOrg')}</option>
      </select>
    </label>
  )
}

export function Layout({ children }: { children: ComponentChildren }) {
  const { me, t, location, signOut } = useApp()
  const [menuOpen, setMenuOpen] = useState(false)
  // Outside an organisation's pages (the profile), keep showing the last one's sections.
  const last = useRef<string | null>(null)
  const inOrg = currentOrg(location.path)
  if (inOrg) last.current = inOrg.org
  const here = inOrg ?? (last.current ? { org: last.current, section: null } : null)
  const membership = here ? membershipOf(me, here.org) : undefined
  const sections = membership ? SECTIONS.filter((s) => !s.needs || can(membership.role, s.needs)) : []
  return (
    <div class="shell">
      <a class="skip" href="#main">
        {t('nav.skip')}
      </a>
      <header class="topbar">
        <Link href="/" class="brand">
          Kokoa
        </Link>
        {me && <OrgSwitcher org={membership ? here!.org : null} section={inOrg?.section ?? ''} />}
        <div class="topbar-end">
          <LanguageSwitch />
          {me && (
            <>
              <Link href="/profile" class="user" aria-current={location.path === '/profile' ? 'page' : undefined}>
                {me.user.name || me.user.email}
              </Link>
              <button type="button" class="link-button" onClick={() => void signOut()}>
                {t('nav.signOut')}
              </button>
            </>
          )}
        </div>
      </header>
      <div class="body">
        {membership && (
          <nav class="sidenav" aria-label={t('nav.main')}>
            <button
              type="button"
              class="menu-toggle"
              aria-expanded={menuOpen}
              aria-controls="sections"
              onClick={() => setMenuOpen(!menuOpen)}
            >
              {t('nav.menu')}
            </button>
            <ul id="sections" class={menuOpen ? 'open' : ''}>
              {sections.map((s) => {
                const href = orgPath(membership.org_id, ...(s.path ? [s.path] : []))
                const current = here?.section === s.path
                return (
                  <li key={s.path}>
                    <Link href={href} aria-current={current ? 'page' : undefined} onClick={() => setMenuOpen(false)}>
                      {t(s.key)}
                    </Link>
                  </li>
                )
              })}
            </ul>
            <p class="role-note">{t('nav.yourRole', { role: t(`role.${membership.role}`) })}</p>
          </nav>
        )}
        <main id="main" tabIndex={-1}>
          {children}
        </main>
      </div>
    </div>
  )
}
