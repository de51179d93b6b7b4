// Lists the app needs whole (status for alerts, the connection matrix) are read page by page:
// the API serves at most MAX_LIMIT rows per request. Bounded, so that a huge organisation
// costs at most PAGE_BOUND requests per refresh; `complete` says whether everything was read.

import { MAX_LIMIT } from './listQuery.ts'

export const PAGE_BOUND = 25 // 5,000 rows at MAX_LIMIT

export interface PageOf<T> {
  items: T[]
  total: number
}

export interface AllPages<T> extends PageOf<T> {
  complete: boolean
}

/** Every row of a paged list, in order: `page(offset, limit)` reads one page. */
export async function allPages<T>(
  page: (offset: number, limit: number) => Promise<PageOf<T>>,
  limit: number = MAX_LIMIT,
  bound: number = PAGE_BOUND,
): Promise<AllPages<T>> {
  const first = await page(0, limit)
  const items = [...first.items]
  let total = first.total
  for (let read = 1; read < bound && items.length < total; read++) {
    const next = await page(items.length, limit)
    total = next.total
    if (next.items.length === 0) break // rows removed while reading: the list is shorter now
    items.push(...next.items)
  }
  return { items, total, complete: items.length >= total }
}
