import { describe } from '../api/problem.ts'
import { useApp } from '../app/context.ts'

/** An API failure as people can read it: the title by problem type, and the server's detail. */
export function ProblemAlert({ error, stale = false }: { error: unknown; stale?: boolean }) {
  const { t, optional } = useApp()
  if (error === null || error === undefined) return null
  const { title, detail } = describe(error, { t, optional })
  return (
    <div class="alert alert-error" role="alert">
      <strong>{title}</strong>
      {detail && <span class="alert-detail"> {detail}</span>}
      {stale && <span class="alert-detail"> {t('error.stale')}</span>}
    </div>
  )
}
