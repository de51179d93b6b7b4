// Labelled form controls: every input has a <label>, its hint and error are linked with
// aria-describedby, and an error sets aria-invalid.
import type { ComponentChildren } from 'preact'

interface Common {
  id: string
  label: string
  error?: string | undefined
  hint?: string | undefined
}

function describedBy({ id, error, hint }: Common): string | undefined {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean)
  return ids.length ? ids.join(' ') : undefined
}

function Messages({ id, error, hint }: Common) {
  return (
    <>
      {hint && (
        <span id={`${id}-hint`} class="hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={`${id}-error`} class="field-error">
          {error}
        </span>
      )}
    </>
  )
}

type InputProps = Common & {
  value: string
  onValue(value: string): void
  type?: 'text' | 'email' | 'password' | 'number' | 'date' | 'search'
  required?: boolean
  autoComplete?: string
  min?: string
  max?: string
  step?: string
  maxLength?: number
}

export function TextField({ id, label, error, hint, value, onValue, type = 'text', ...rest }: InputProps) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        name={id}
        // Preact's input types are a union keyed by `type`; ours is one of the listed kinds.
        type={type as 'text'}
        value={value}
        onInput={(e) => onValue(e.currentTarget.value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy({ id, label, error, hint })}
        {...rest}
      />
      <Messages id={id} label={label} error={error} hint={hint} />
    </div>
  )
}

type AreaProps = Common & { value: string; onValue(value: string): void; rows?: number; placeholder?: string }

export function TextAreaField({ id, label, error, hint, value, onValue, rows = 3, placeholder }: AreaProps) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <textarea
        id={id}
        name={id}
        rows={rows}
        value={value}
        placeholder={placeholder}
        onInput={(e) => onValue(e.currentTarget.value)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy({ id, label, error, hint })}
      />
      <Messages id={id} label={label} error={error} hint={hint} />
    </div>
  )
}

type SelectProps<V extends string> = Common & {
  value: V
  options: readonly { value: V; label: string }[]
  onValue(value: V): void
  disabled?: boolean
}

export function SelectField<V extends string>({ id, label, error, hint, value, options, onValue, disabled }: SelectProps<V>) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select
        id={id}
        name={id}
        value={value}
        disabled={disabled}
        onChange={(e) => onValue(e.currentTarget.value as V)}
        aria-invalid={error ? 'true' : undefined}
        aria-describedby={describedBy({ id, label, error, hint })}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <Messages id={id} label={label} error={error} hint={hint} />
    </div>
  )
}

export function CheckboxField({ id, label, hint, checked, onChecked }: Common & { checked: boolean; onChecked(v: boolean): void }) {
  return (
    <div class="field field-check">
      <input
        id={id}
        name={id}
        type="checkbox"
        checked={checked}
        onChange={(e) => onChecked(e.currentTarget.checked)}
        aria-describedby={hint ? `${id}-hint` : undefined}
      />
      <label for={id}>{label}</label>
      {hint && (
        <span id={`${id}-hint`} class="hint">
          {hint}
        </span>
      )}
    </div>
  )
}

export function Form({ onSubmit, children, label }: { onSubmit(): void; children: ComponentChildren; label?: string }) {
  return (
    <form
      class="form"
      aria-label={label}
      noValidate
      onSubmit={(e) => {
        e.preventDefault()
        onSubmit()
      }}
    >
      {children}
    </form>
  )
}
