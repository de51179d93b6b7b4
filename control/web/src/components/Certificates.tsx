// Public (HTTPS) certificates: their expiry as a badge, all of an organisation's (for the list
// and the alerts), the alert rows, and a PEM field that can also read a file.
import { useState } from 'preact/hooks'
import { unwrap } from '../api/client.ts'
import { useApp, useOrg } from '../app/context.ts'
import { useResource, type Resource } from '../app/hooks.ts'
import { expiryMessage, formatDays, MAX_PEM_FILE_BYTES, type CertificateAlert, type Certificate, type Expiry, type ExpiryState } from '../lib/certificates.ts'
import { formatDateTime } from '../lib/format.ts'
import { allPages, type AllPages } from '../lib/pages.ts'
import { orgPath } from '../lib/routes.ts'
import { Link } from './Link.tsx'

// The status badges' colours and shapes: a circle for fine, a square for soon, a diamond for
// expired (never colour alone: the text says it too).
const BADGE: Record<ExpiryState, string> = { valid: 'status-online', pending: 'status-unknown', expiring: 'status-degraded', expired: 'status-offline' }

export function ExpiryBadge({ expiry, notAfter }: { expiry: Expiry; notAfter: string }) {
  const { t, locale } = useApp()
  const { key, days } = expiryMessage(expiry)
  return (
    <span class={`badge expiry ${BADGE[expiry.state]}`} title={formatDateTime(notAfter, locale)}>
      <span class="dot" aria-hidden="true" />
      {t(key, { days: formatDays(days, locale) })}
    </span>
  )
}

/** Every certificate of the organisation (at most 100 per organisation: one request), polled. */
export function useCertificates(): Resource<AllPages<Certificate>> {
  const { api } = useApp()
  const org = useOrg()
  return useResource(
    (signal) => allPages((offset, limit) => unwrap(api.GET('/api/v1/orgs/{org_id}/certificates', { params: { path: { org_id: org.id }, query: { limit, offset } }, signal }))),
    [org.id],
  )
}

/** Alert rows (for the list of AlertList) of certificates expired or expiring soon. */
export function CertificateAlertItems({ alerts }: { alerts: readonly CertificateAlert[] }) {
  const { t } = useApp()
  const org = useOrg()
  return (
    <>
      {alerts.map((a) => (
        <li key={`certificate-${a.id}`} class={`alert-item ${a.expiry.state === 'expired' ? 'alert-offline' : 'alert-degraded'}`}>
          <div class="alert-head">
            <ExpiryBadge expiry={a.expiry} notAfter={a.notAfter} /> <span class="hint">{t('alerts.publicCertificate')}</span>{' '}
            <Link href={orgPath(org.id, 'certificates', a.id)}>{a.name}</Link>
          </div>
          {a.names.length > 1 && <p class="alert-text">{a.names.join(', ')}</p>}
        </li>
      ))}
    </>
  )
}

interface PemFieldProps {
  id: string
  label: string
  fileLabel: string
  hint: string
  value: string
  onValue(value: string): void
  error?: string | undefined
  secret?: boolean
}

/** A PEM textarea and a file picker that fills it (FileReader: nothing leaves the browser
 * until the form is sent). A secret one (the private key) is not autocompleted nor
 * spell-checked. */
export function PemField({ id, label, fileLabel, hint, value, onValue, error, secret = false }: PemFieldProps) {
  const { t } = useApp()
  const [fileError, setFileError] = useState('')
  const shown = error ?? (fileError || undefined)
  const describedBy = [`${id}-hint`, shown ? `${id}-error` : ''].filter(Boolean).join(' ')
  const read = (input: HTMLInputElement) => {
    const file = input.files?.[0]
    input.value = '' // the File is not kept (nor the same file refused when picked again)
    if (!file) return
    setFileError('')
    if (file.size > MAX_PEM_FILE_BYTES) {
      setFileError(t('certificates.fileTooLarge', { file: file.name }))
      return
    }
    const reader = new FileReader()
    reader.onload = () => onValue(typeof reader.result === 'string' ? reader.result : '')
    reader.onerror = () => setFileError(t('certificates.fileUnreadable', { file: file.name }))
    reader.readAsText(file)
  }
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <textarea
        id={id}
        name={id}
        class="pem"
        rows={secret ? 6 : 10}
        value={value}
        autoComplete="off"
        spellcheck={false}
        autoCapitalize="off"
        autoCorrect="off"
        required
        onInput={(e) => {
          setFileError('')
          onValue(e.currentTarget.value)
        }}
        aria-invalid={shown ? 'true' : undefined}
        aria-describedby={describedBy}
      />
      <span id={`${id}-hint`} class="hint">
        {hint}
      </span>
      {shown && (
        <span id={`${id}-error`} class="field-error">
          {shown}
        </span>
      )}
      <label class="file-pick">
        <span class="hint">{fileLabel}</span>{' '}
        <input type="file" accept=".pem,.crt,.cer,.key,.txt,application/x-pem-file,text/plain" onChange={(e) => read(e.currentTarget)} />
      </label>
    </div>
  )
}
