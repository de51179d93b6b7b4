import { useState } from 'preact/hooks'
import { useApp } from '../app/context.ts'
import { useAction } from '../app/hooks.ts'
import { ConfirmDialog } from './ConfirmDialog.tsx'
import { ProblemAlert } from './ProblemAlert.tsx'

interface ToggleProps {
  enabled: boolean
  name: string
  run(fn: () => Promise<unknown>): Promise<boolean>
  busy?: boolean
  onToggle(enable: boolean): Promise<unknown>
}

/** Enable or disable: one button whose label says what it will do, and to what. */
export function ToggleButton({ enabled, name, run, busy, onToggle }: ToggleProps) {
  const { t, notify } = useApp()
  const click = async () => {
    if (await run(() => onToggle(!enabled))) notify(t(enabled ? 'notice.disabled' : 'notice.enabled', { name }))
  }
  return (
    <button type="button" disabled={busy} onClick={click} aria-label={t(enabled ? 'action.disableNamed' : 'action.enableNamed', { name })}>
      {enabled ? t('action.disable') : t('action.enable')}
    </button>
  )
}

/** Delete after a confirmation dialog that names the thing; the dialog shows the failure. */
export function DeleteButton({ name, onDelete, onDone, label }: { name: string; label?: string; onDelete(): Promise<unknown>; onDone(): void }) {
  const { t, notify } = useApp()
  const [open, setOpen] = useState(false)
  const action = useAction()
  const confirm = async () => {
    if (await action.run(onDelete)) {
      setOpen(false)
      notify(t('notice.deleted', { name }))
      onDone()
    }
  }
  const cancel = () => {
    action.clear()
    setOpen(false)
  }
  return (
    <>
      <button type="button" class="danger-outline" onClick={() => setOpen(true)} aria-label={label ? t('action.named', { action: label, name }) : t('action.deleteNamed', { name })}>
        {label ?? t('action.delete')}
      </button>
      <ConfirmDialog
        open={open}
        title={t('confirm.deleteTitle', { name })}
        confirmLabel={label ?? t('action.delete')}
        busy={action.busy}
        onConfirm={() => void confirm()}
        onCancel={cancel}
      >
        <p>{t('confirm.deleteBody')}</p>
        <ProblemAlert error={action.error} />
      </ConfirmDialog>
    </>
  )
}
