import { useState } from 'preact/hooks'
import { useApp } from '../app/context.ts'

/** A secret the server shows only once (an API token, an invitation link, an enrollment
 * command): read-only text to select, a copy button, and the warning. */
export function SecretOnce({ label, value, onDone }: { label: string; value: string; onDone?(): void }) {
  const { t } = useApp()
  const [copied, setCopied] = useState(false)
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value)
      setCopied(true)
    } catch {
      setCopied(false)
    }
  }
  return (
    <section class="secret" aria-label={label}>
      <p class="secret-label">
        <strong>{label}</strong> — {t('secret.once')}
      </p>
      <div class="secret-row">
        <code class="secret-value" tabIndex={0}>{value}</code>
        <button type="button" onClick={copy}>
          {copied ? t('secret.copied') : t('secret.copy')}
        </button>
        {onDone && (
          <button type="button" onClick={onDone}>
            {t('common.done')}
          </button>
        )}
      </div>
      <span class="visually-hidden" aria-live="polite">{copied ? t('secret.copied') : ''}</span>
    </section>
  )
}
