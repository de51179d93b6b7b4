// Live updates by polling: run a task, wait `interval`, run it again — never two at once,
// and not at all while the page is hidden (a background tab costs the server nothing). When
// the page becomes visible again the task runs at once, so what you see is fresh.

export interface PollEnv {
  setTimer(fn: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
  hidden(): boolean
  /** Calls `fn` when visibility changes; returns the unsubscribe function. */
  onVisibilityChange(fn: () => void): () => void
}

export const POLL_INTERVAL_MS = 5000

export class Poller {
  private timer: unknown = null
  private running = false
  private active = false
  private again = false
  private unsubscribe: (() => void) | null = null

  constructor(
    private readonly task: () => Promise<unknown>,
    private readonly interval: number,
    private readonly env: PollEnv,
  ) {}

  start(): void {
    if (this.active) return
    this.active = true
    this.unsubscribe = this.env.onVisibilityChange(() => this.visibilityChanged())
    this.run()
  }

  stop(): void {
    this.active = false
    this.cancelTimer()
    this.unsubscribe?.()
    this.unsubscribe = null
  }

  /** Run now (after the run in flight, if any), then keep the usual rhythm. */
  refresh(): void {
    if (!this.active) return
    this.cancelTimer()
    if (this.running) this.again = true
    else this.run()
  }

  get scheduled(): boolean {
    return this.timer !== null
  }

  private visibilityChanged(): void {
    if (this.env.hidden()) this.cancelTimer()
    else if (!this.running && this.timer === null) this.run()
  }

  private run(): void {
    this.running = true
    this.again = false
    this.task()
      .catch(() => undefined) // the task reports its own errors; polling goes on
      .finally(() => {
        this.running = false
        if (this.again) this.run()
        else this.schedule()
      })
  }

  private schedule(): void {
    if (!this.active || this.env.hidden() || this.timer !== null) return
    this.timer = this.env.setTimer(() => {
      this.timer = null
      this.run()
    }, this.interval)
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.env.clearTimer(this.timer)
    this.timer = null
  }
}

export function browserPollEnv(doc: Document = document): PollEnv {
  return {
    setTimer: (fn, ms) => window.setTimeout(fn, ms),
    clearTimer: (handle) => window.clearTimeout(handle as number),
    hidden: () => doc.visibilityState === 'hidden',
    onVisibilityChange(fn) {
      doc.addEventListener('visibilitychange', fn)
      return () => doc.removeEventListener('visibilitychange', fn)
    },
  }
}
