import type { Status } from '../api/types.ts'
import { useApp } from '../app/context.ts'

/** Status as a word with a shape and a colour (never colour alone). */
export function StatusBadge({ status, detail }: { status: Status; detail?: string | null }) {
  const { t } = useApp()
  return (
    <span class={`badge status-${status}`} title={detail || undefined}>
      <span class="dot" aria-hidden="true" />
      {t(`status.${status}`)}
    </span>
  )
}

export function EnabledBadge({ enabled }: { enabled: boolean }) {
  const { t } = useApp()
  return (
    <span class={`badge ${enabled ? 'on' : 'off'}`}>{enabled ? t('common.enabled') : t('common.disabled')}</span>
  )
}
