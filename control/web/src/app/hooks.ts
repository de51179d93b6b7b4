// Data loading with live updates, and mutations with a busy flag and an error to show.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { formatListQuery, parseListQuery, type ListQuery } from '../lib/listQuery.ts'
import { browserPollEnv, Poller, POLL_INTERVAL_MS } from '../lib/poller.ts'
import { useApp } from './context.ts'

export interface Resource<T> {
  data: T | undefined
  error: unknown
  loading: boolean
  reload(): void
}

function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError'
}

/** Load with `load`, again whenever `deps` change, and every few seconds while `poll` (the
 * default) and the page is visible. A failed refresh keeps the last data and sets `error`. */
export function useResource<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
  { poll = true }: { poll?: boolean } = {},
): Resource<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true })
  const refresh = useRef<() => void>(() => undefined)

  useEffect(() => {
    const controller = new AbortController()
    setState({ loading: true })
    const task = async (): Promise<void> => {
      try {
        const data = await load(controller.signal)
        if (!controller.signal.aborted) setState({ data, loading: false })
      } catch (error) {
        if (!controller.signal.aborted && !isAbort(error)) {
          setState((s) => ({ data: s.data, error, loading: false }))
        }
      }
    }
    if (!poll) {
      refresh.current = () => void task()
      void task()
      return () => controller.abort()
    }
    const poller = new Poller(task, POLL_INTERVAL_MS, browserPollEnv())
    refresh.current = () => poller.refresh()
    poller.start()
    return () => {
      poller.stop()
      controller.abort()
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps)

  const reload = useCallback(() => refresh.current(), [])
  return { data: state.data, error: state.error, loading: state.loading, reload }
}

export interface Action {
  busy: boolean
  error: unknown
  /** Runs `fn`; true when it succeeded. Errors land in `error` (shown by the page). */
  run(fn: () => Promise<unknown>): Promise<boolean>
  clear(): void
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const run = useCallback(async (fn: () => Promise<unknown>) => {
    setBusy(true)
    setError(null)
    try {
      await fn()
      return true
    } catch (e) {
      setError(e)
      return false
    } finally {
      setBusy(false)
    }
  }, [])
  return { busy, error, run, clear: () => setError(null) }
}

/** The list state in the URL, and a setter that replaces it (no history entry per keystroke). */
export function useListQuery(): [ListQuery, (next: ListQuery) => void] {
  const { location, navigate } = useApp()
  const query = parseListQuery(location.search)
  const set = useCallback(
    (next: ListQuery) => navigate(location.path + formatListQuery(next), { replace: true }),
    [location.path, navigate],
  )
  return [query, set]
}
