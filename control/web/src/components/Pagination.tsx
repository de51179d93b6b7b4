import { useApp } from '../app/context.ts'
import { pageInfo } from '../lib/listQuery.ts'

export function Pagination(props: { total: number; offset: number; limit: number; onPage(offset: number): void }) {
  const { t } = useApp()
  const info = pageInfo(props.total, props.offset, props.limit)
  if (info.prev === null && info.next === null) return null
  return (
    <nav class="pagination" aria-label={t('common.pagination')}>
      <button type="button" disabled={info.prev === null} onClick={() => info.prev !== null && props.onPage(info.prev)}>
        {t('common.previous')}
      </button>
      <span aria-live="polite">{t('common.range', { from: info.from, to: info.to, total: info.total })}</span>
      <button type="button" disabled={info.next === null} onClick={() => info.next !== null && props.onPage(info.next)}>
        {t('common.next')}
      </button>
    </nav>
  )
}
