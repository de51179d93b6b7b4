import { useApp } from '../app/context.ts'

export function Loading() {
  const { t } = useApp()
  return (
    <p class="loading" role="status">
      {t('common.loading')}
    </p>
  )
}
