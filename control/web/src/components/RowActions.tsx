import type { ComponentChildren } from 'preact'
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
  /** Ask first before disabling, saying this (nodes and agents: their certificates are revoked). */
  confirmDisable?: ComponentChildren
  /** The notice after enabling, instead of "{name} was enabled." */
  enabledNotice?: string
}

/** Enable or disable: one button whose label says what it will do, and to what. */
export function ToggleButton({ enabled, name, run, busy, onToggle, confirmDisable, enabledNotice }: ToggleProps) {
  const { t, notify } = useApp()
  const [asking, setAsking] = useState(false)
  const toggle = async () => {
    if (await run(() => onToggle(!enabled))) notify(enabled ? t('notice.disabled', { name }) : enabledNotice ?? t('notice.enabled', { name }))
  }
  const click = () => {
    if (enabled && confirmDisable) setAsking(true)
    else void toggle()
  }
  return (
    <>
      <button type="button" disabled={busy} onClick={click} aria-label={t(enabled ? 'action.disableNamed' : 'action.enableNamed', { name })}>
        {enabled ? t('action.disable') : t('action.enable')}
      </button>
      {confirmDisable && (
        <ConfirmDialog
          open={asking}
          title={t('confirm.disableTitle', { name })}
          confirmLabel={t('action.disable')}
          busy={busy}
          onConfirm={() => {
            setAsking(false)
            void toggle()
          }}
          onCancel={() => setAsking(false)}
        >
          {confirmDisable}
        </ConfirmDialog>
      )}
    </>
  )
}

/** Delete after a confirmation dialog that names the thing; the dialog shows the failure. */
export function DeleteButton({ name, onDelete, onDone, label, body }: { name: string; label?: string; body?: ComponentChildren; onDelete(): Promise<unknown>; onDone(): void }) {
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
        {body ?? <p>{t('confirm.deleteBody')}</p>}
        <ProblemAlert error={action.error} />
      </ConfirmDialog>
    </>
  )
}

/** What disabling or deleting a node or agent does to its certificates (docs/enrollment.md). */
export function RevocationNote({ kind, action }: { kind: 'node' | 'agent'; action: 'disable' | 'delete' }) {
  const { t } = useApp()
  return (
    <>
      <p>{t(kind === 'node' ? 'confirm.revokeNode' : 'confirm.revokeAgent')}</p>
      <p>{t(action === 'disable' ? 'confirm.reenroll' : 'confirm.deleteBody')}</p>
    </>
  )
}

/** Enable/disable for a node or an agent: disabling asks first and says its certificates are
 * revoked; enabling says it must be enrolled again. */
export function HolderToggle({ kind, holder, ...rest }: { kind: 'node' | 'agent'; holder: { enabled: boolean; name: string }; run(fn: () => Promise<unknown>): Promise<boolean>; busy: boolean; onToggle(on: boolean): Promise<unknown> }) {
  const { t } = useApp()
  return (
    <ToggleButton
      enabled={holder.enabled}
      name={holder.name}
      confirmDisable={<RevocationNote kind={kind} action="disable" />}
      enabledNotice={t('notice.enabledEnroll', { name: holder.name })}
      {...rest}
    />
  )
}
