import type { ComponentChildren } from 'preact'
import { useEffect, useId, useRef } from 'preact/hooks'
import { useApp } from '../app/context.ts'

interface Props {
  open: boolean
  title: string
  children?: ComponentChildren
  confirmLabel: string
  busy?: boolean
  onConfirm(): void
  onCancel(): void
}

/** A modal <dialog>: the browser traps focus in it (starting on Cancel, the first button),
 * Escape cancels, and focus returns to the button that opened it. */
export function ConfirmDialog({ open, title, children, confirmLabel, busy, onConfirm, onCancel }: Props) {
  const { t } = useApp()
  const ref = useRef<HTMLDialogElement>(null)
  const titleId = useId() // a list has a dialog per row: each needs its own
  useEffect(() => {
    const dialog = ref.current
    if (!dialog) return
    if (open && !dialog.open) dialog.showModal()
    if (!open && dialog.open) dialog.close()
  }, [open])
  return (
    <dialog ref={ref} class="dialog" aria-labelledby={titleId} onCancel={(e) => { e.preventDefault(); onCancel() }}>
      <h2 id={titleId}>{title}</h2>
      <div class="dialog-body">{children}</div>
      <div class="actions">
        <button type="button" onClick={onCancel}>
          {t('common.cancel')}
        </button>
        <button type="button" class="danger" disabled={busy} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  )
}
