// Public (HTTPS) certificates: the list (soonest to expire first, searched and filtered in the
// browser: an organisation has at most 100), upload, detail, replace and delete.
import { useEffect, useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { fieldErrors } from '../api/problem.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useAction, useResource } from '../app/hooks.ts'
import type { PageProps } from '../app/routes.ts'
import { ExpiryBadge, PemField, useCertificates } from '../components/Certificates.tsx'
import { EmptyState } from '../components/EmptyState.tsx'
import { Form } from '../components/Field.tsx'
import { Link } from '../components/Link.tsx'
import { Loading } from '../components/Loading.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { RecentEvents } from '../components/RecentEvents.tsx'
import { DeleteButton } from '../components/RowActions.tsx'
import {
  certificateName,
  expiryOf,
  filterCertificates,
  formatCertificateQuery,
  parseCertificateQuery,
  servicesServed,
  type Certificate,
  type CertificateQuery,
  type ExpiryFilter,
} from '../lib/certificates.ts'
import { formatDateTime } from '../lib/format.ts'
import { allPages } from '../lib/pages.ts'
import { can } from '../lib/permissions.ts'
import { orgPath } from '../lib/routes.ts'

const DEBOUNCE_MS = 300

function useRemove() {
  const { api } = useApp()
  const org = useOrg()
  return (id: string) => unwrap(api.DELETE('/api/v1/orgs/{org_id}/certificates/{certificate_id}', { params: { path: { org_id: org.id, certificate_id: id } } }))
}

function Filters({ query, onChange }: { query: CertificateQuery; onChange(q: CertificateQuery): void }) {
  const { t } = useApp()
  const [text, setText] = useState(query.q)
  useEffect(() => setText(query.q), [query.q])
  useEffect(() => {
    if (text === query.q) return
    const timer = window.setTimeout(() => onChange({ ...query, q: text }), DEBOUNCE_MS)
    return () => window.clearTimeout(timer)
  }, [text, query.q, query.expiry])
  const options: [ExpiryFilter, string][] = [
    ['all', t('certificates.filterAll')],
    ['attention', t('certificates.filterAttention')],
    ['expired', t('certificates.filterExpired')],
    ['valid', t('certificates.filterValid')],
  ]
  return (
    <div class="filters" role="search" aria-label={t('certificates.filter')}>
      <div class="field">
        <label for="search">{t('list.search')}</label>
        <input id="search" type="search" value={text} maxLength={100} onInput={(e) => setText(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="expiry-filter">{t('certificates.expiryFilter')}</label>
        <select id="expiry-filter" value={query.expiry} onChange={(e) => onChange({ ...query, expiry: e.currentTarget.value as ExpiryFilter })}>
          {options.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
    </div>
  )
}

export function Certificates() {
  const { t, locale, location, navigate } = useApp()
  const org = useOrg()
  const query = parseCertificateQuery(location.search)
  const setQuery = (q: CertificateQuery) => navigate(location.path + formatCertificateQuery(q), { replace: true })
  const list = useCertificates()
  const remove = useRemove()
  const canWrite = can(org.role, 'certificates.write')
  const filtered = query.q !== '' || query.expiry !== 'all'
  const now = Date.now()
  const shown = list.data ? filterCertificates(list.data.items, query, now) : []
  return (
    <section>
      <PageHeader title={t('certificates.title')}>
        {canWrite && (
          <Link href={orgPath(org.id, 'certificates', 'new')} class="button primary">
            {t('certificates.upload')}
          </Link>
        )}
      </PageHeader>
      <Filters query={query} onChange={setQuery} />
      <ProblemAlert error={list.error} stale={list.data !== undefined} />
      {list.data === undefined ? (
        list.error ? null : <Loading />
      ) : shown.length === 0 ? (
        <EmptyState title={filtered ? t('certificates.noMatch') : t('certificates.empty')}>
          {!filtered && (canWrite ? t('certificates.emptyHint') : t('common.askOperator'))}
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">{t('certificates.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('certificates.names')}</th>
                <th scope="col" class="wide-only">{t('certificates.issuer')}</th>
                <th scope="col" class="wide-only">{t('certificates.keyType')}</th>
                <th scope="col">{t('certificates.expiry')}</th>
                {canWrite && <th scope="col" class="wide-only">{t('common.actions')}</th>}
              </tr>
            </thead>
            <tbody>
              {shown.map((c) => {
                const name = certificateName(c)
                return (
                  <tr key={c.id}>
                    <td>
                      <Link href={orgPath(org.id, 'certificates', c.id)}>{name}</Link>
                      {c.names.length > 1 && <div class="hint">{c.names.slice(1).join(', ')}</div>}
                    </td>
                    <td class="wide-only">{c.issuer}</td>
                    <td class="wide-only">{c.key_type}</td>
                    <td>
                      <ExpiryBadge expiry={expiryOf(c, now)} notAfter={c.not_after} />
                      <div class="hint wide-only">{formatDateTime(c.not_after, locale)}</div>
                    </td>
                    {canWrite && (
                      <td class="row-actions wide-only">
                        <Link href={orgPath(org.id, 'certificates', c.id, 'replace')} class="button" aria-label={t('certificates.replaceTitle', { name })}>
                          {t('certificates.replace')}
                        </Link>
                        <DeleteButton name={name} body={<p>{t('certificates.deleteBody')}</p>} onDelete={() => remove(c.id)} onDone={list.reload} />
                      </td>
                    )}
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}

/** The upload form (POST) or, given `certificate`, its replacement (PUT). The private key is
 * dropped from the form as soon as it is sent, whatever the answer. */
function CertificateForm({ certificate, onSaved }: { certificate?: Certificate; onSaved(c: Certificate): void }) {
  const { api, t } = useApp()
  const org = useOrg()
  const [chain, setChain] = useState('')
  const [key, setKey] = useState('')
  const action = useAction()
  const errors = fieldErrors(action.error)
  const submit = () => {
    const body = { chain, private_key: key }
    setKey('')
    void action.run(async () => {
      const saved = certificate
        ? await unwrap(api.PUT('/api/v1/orgs/{org_id}/certificates/{certificate_id}', { params: { path: { org_id: org.id, certificate_id: certificate.id } }, body }))
        : await unwrap(api.POST('/api/v1/orgs/{org_id}/certificates', { params: { path: { org_id: org.id } }, body }))
      onSaved(saved)
    })
  }
  const label = certificate ? t('certificates.replaceTitle', { name: certificateName(certificate) }) : t('certificates.uploadTitle')
  return (
    <>
      <p>{certificate ? t('certificates.replaceIntro') : t('certificates.uploadIntro')}</p>
      <ProblemAlert error={action.error} />
      <Form onSubmit={submit} label={label}>
        <PemField id="chain" label={t('certificates.chain')} fileLabel={t('certificates.chainFile')} hint={t('certificates.chainHint')} value={chain} onValue={setChain} error={errors.chain} />
        <PemField id="private_key" secret label={t('certificates.key')} fileLabel={t('certificates.keyFile')} hint={t('certificates.keyHint')} value={key} onValue={setKey} error={errors.private_key} />
        <button type="submit" class="primary" disabled={action.busy}>
          {certificate ? t('certificates.submitReplace') : t('certificates.submitUpload')}
        </button>
      </Form>
    </>
  )
}

export function CertificateNew() {
  const { t, navigate, notify } = useApp()
  const org = useOrg()
  if (!can(org.role, 'certificates.write')) return <p class="alert">{t('common.notAllowed')}</p>
  return (
    <section class="narrow">
      <PageHeader title={t('certificates.uploadTitle')} />
      <CertificateForm
        onSaved={(c) => {
          notify(t('certificates.uploadedNotice', { name: certificateName(c) }))
          navigate(orgPath(org.id, 'certificates', c.id))
        }}
      />
    </section>
  )
}

function useCertificate(id: string, poll = true) {
  const { api } = useApp()
  const org = useOrg()
  return useResource(
    (signal) => unwrap(api.GET('/api/v1/orgs/{org_id}/certificates/{certificate_id}', { params: { path: { org_id: org.id, certificate_id: id } }, signal })),
    [org.id, id],
    { poll },
  )
}

export function CertificateReplace({ params }: PageProps) {
  const { t, navigate, notify } = useApp()
  const org = useOrg()
  const cert = useCertificate(params.id ?? '', false) // the form replaces what it opened on
  if (!can(org.role, 'certificates.write')) return <p class="alert">{t('common.notAllowed')}</p>
  if (!cert.data) return cert.error ? <ProblemAlert error={cert.error} /> : <Loading />
  return (
    <section class="narrow">
      <PageHeader title={t('certificates.replaceTitle', { name: certificateName(cert.data) })} />
      <CertificateForm
        certificate={cert.data}
        onSaved={(c) => {
          notify(t('certificates.replacedNotice', { name: certificateName(c) }))
          navigate(orgPath(org.id, 'certificates', c.id))
        }}
      />
    </section>
  )
}

function ServedServices({ names }: { names: readonly string[] }) {
  const { api, t } = useApp()
  const org = useOrg()
  const services = useResource(
    (signal) => allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/services', { params: { path: { org_id: org.id }, query: { limit, offset } }, signal }))),
    [org.id],
  )
  if (!services.data) return services.error ? <ProblemAlert error={services.error} /> : <Loading />
  const served = servicesServed(names, services.data.items)
  if (served.length === 0) return <>{t('certificates.noServices')}</>
  return (
    <>
      {served.map((s) => (
        <Link key={s.id} href={orgPath(org.id, 'services', s.id)} class="chip">
          {s.name} ({s.hostname})
        </Link>
      ))}
    </>
  )
}

export function CertificateDetail({ params }: PageProps) {
  const { t, locale, navigate } = useApp()
  const org = useOrg()
  const cert = useCertificate(params.id ?? '')
  const remove = useRemove()
  const c = cert.data
  if (!c) return cert.error ? <ProblemAlert error={cert.error} /> : <Loading />
  const name = certificateName(c)
  const canWrite = can(org.role, 'certificates.write')
  return (
    <section>
      <PageHeader title={name}>
        {canWrite && (
          <>
            <Link href={orgPath(org.id, 'certificates', c.id, 'replace')} class="button" aria-label={t('certificates.replaceTitle', { name })}>
              {t('certificates.replace')}
            </Link>
            <DeleteButton name={name} body={<p>{t('certificates.deleteBody')}</p>} onDelete={() => remove(c.id)} onDone={() => navigate(orgPath(org.id, 'certificates'))} />
          </>
        )}
      </PageHeader>
      <ProblemAlert error={cert.error} stale />
      <dl class="details">
        <dt>{t('certificates.expiry')}</dt>
        <dd>
          <ExpiryBadge expiry={expiryOf(c)} notAfter={c.not_after} />
        </dd>
        <dt>{t('certificates.names')}</dt>
        <dd>
          {c.names.map((n) => (
            <span key={n} class="chip">
              {n}
            </span>
          ))}
        </dd>
        <dt>{t('certificates.services')}</dt>
        <dd>
          <ServedServices names={c.names} />
        </dd>
        <dt>{t('certificates.subject')}</dt>
        <dd>{c.subject}</dd>
        <dt>{t('certificates.issuer')}</dt>
        <dd>{c.issuer}</dd>
        <dt>{t('certificates.keyType')}</dt>
        <dd>{c.key_type}</dd>
        <dt>{t('certificates.notBefore')}</dt>
        <dd>{formatDateTime(c.not_before, locale)}</dd>
        <dt>{t('certificates.notAfter')}</dt>
        <dd>{formatDateTime(c.not_after, locale)}</dd>
        <dt>{t('certificates.serial')}</dt>
        <dd>
          <code>{c.serial}</code>
        </dd>
        <dt>{t('certificates.fingerprint')}</dt>
        <dd>
          <code>{c.fingerprint}</code>
        </dd>
        <dt>{t('certificates.uploaded')}</dt>
        <dd>{formatDateTime(c.created_at, locale)}</dd>
        <dt>{t('field.updated')}</dt>
        <dd>{formatDateTime(c.updated_at, locale)}</dd>
      </dl>
      <section aria-labelledby="chain-heading">
        <h2 id="chain-heading">{t('certificates.chain')}</h2>
        <pre tabIndex={0}>{c.chain}</pre>
      </section>
      <RecentEvents targetType="public_certificate" targetId={c.id} />
    </section>
  )
}
