import { describe, expect, it } from 'vitest'
import { allPages, type PageOf } from './pages.ts'

function server(rows: number) {
  const calls: [number, number][] = []
  const data = Array.from({ length: rows }, (_, i) => i)
  const page = async (offset: number, limit: number): Promise<PageOf<number>> => {
    calls.push([offset, limit])
    return { items: data.slice(offset, offset + limit), total: data.length }
  }
  return { calls, page, data }
}

describe('allPages', () => {
  it('reads one page when everything fits', async () => {
    const s = server(3)
    const got = await allPages(s.page, 200)
    expect(got).toEqual({ items: [0, 1, 2], total: 3, complete: true })
    expect(s.calls).toEqual([[0, 200]])
  })

  it('reads every page in order past the first 200 rows', async () => {
    const s = server(450)
    const got = await allPages(s.page, 200)
    expect(got.items).toEqual(s.data)
    expect(got.complete).toBe(true)
    expect(s.calls).toEqual([[0, 200], [200, 200], [400, 200]])
  })

  it('stops at the bound and says the list is incomplete', async () => {
    const s = server(1000)
    const got = await allPages(s.page, 100, 3)
    expect(got.items).toEqual(s.data.slice(0, 300))
    expect(got).toMatchObject({ total: 1000, complete: false })
    expect(s.calls).toHaveLength(3)
  })

  it('stops when rows vanish while reading', async () => {
    let total = 300
    const page = async (offset: number, limit: number): Promise<PageOf<number>> => {
      const rows = Array.from({ length: total }, (_, i) => i).slice(offset, offset + limit)
      total = 150 // rows deleted after the first page
      return { items: rows, total: offset === 0 ? 300 : total }
    }
    const got = await allPages(page, 200)
    expect(got.items).toHaveLength(200)
    expect(got.complete).toBe(true)
  })

  it('handles an empty list', async () => {
    const got = await allPages(server(0).page)
    expect(got).toEqual({ items: [], total: 0, complete: true })
  })
})
