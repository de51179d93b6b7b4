import { describe, expect, it } from 'vitest'
import { Poller, type PollEnv } from './poller.ts'

/** A hand-driven clock and page visibility. */
class FakeEnv implements PollEnv {
  timers = new Map<number, { fn: () => void; ms: number }>()
  next = 1
  isHidden = false
  listeners = new Set<() => void>()

  setTimer(fn: () => void, ms: number) {
    const id = this.next++
    this.timers.set(id, { fn, ms })
    return id
  }
  clearTimer(handle: unknown) {
    this.timers.delete(handle as number)
  }
  hidden() {
    return this.isHidden
  }
  onVisibilityChange(fn: () => void) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }
  fire() {
    const [id, timer] = [...this.timers.entries()][0] ?? []
    if (id === undefined || !timer) throw new Error('no timer pending')
    this.timers.delete(id)
    timer.fn()
  }
  setHidden(hidden: boolean) {
    this.isHidden = hidden
    for (const fn of this.listeners) fn()
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

function counter() {
  const calls = { n: 0, release: [] as (() => void)[] }
  const task = () => {
    calls.n += 1
    return new Promise<void>((resolve) => calls.release.push(resolve))
  }
  return { calls, task }
}

describe('Poller', () => {
  it('runs at once, then every interval after the previous run finished', async () => {
    const env = new FakeEnv()
    const { calls, task } = counter()
    const poller = new Poller(task, 5000, env)
    poller.start()
    expect(calls.n).toBe(1)
    expect(env.timers.size).toBe(0) // no timer while a run is in flight: never two at once
    calls.release.shift()!()
    await settle()
    expect([...env.timers.values()].map((t) => t.ms)).toEqual([5000])
    env.fire()
    expect(calls.n).toBe(2)
    poller.stop()
  })

  it('pauses while the page is hidden and refreshes when it is shown', async () => {
    const env = new FakeEnv()
    const { calls, task } = counter()
    const poller = new Poller(task, 5000, env)
    poller.start()
    calls.release.shift()!()
    await settle()
    env.setHidden(true)
    expect(env.timers.size).toBe(0)
    expect(calls.n).toBe(1)
    env.setHidden(false)
    expect(calls.n).toBe(2) // fresh data as soon as you look again
    poller.stop()
  })

  it('does not schedule after a run that ends while hidden', async () => {
    const env = new FakeEnv()
    const { calls, task } = counter()
    const poller = new Poller(task, 5000, env)
    poller.start()
    env.setHidden(true)
    calls.release.shift()!()
    await settle()
    expect(env.timers.size).toBe(0)
    poller.stop()
  })

  it('keeps polling after a failed run', async () => {
    const env = new FakeEnv()
    let n = 0
    const poller = new Poller(async () => {
      n += 1
      throw new Error('offline')
    }, 1000, env)
    poller.start()
    await settle()
    env.fire()
    await settle()
    expect(n).toBe(2)
    expect(env.timers.size).toBe(1)
    poller.stop()
  })

  it('refresh runs now, or right after the run in flight', async () => {
    const env = new FakeEnv()
    const { calls, task } = counter()
    const poller = new Poller(task, 5000, env)
    poller.start()
    poller.refresh()
    expect(calls.n).toBe(1) // still in flight: queued, not doubled
    calls.release.shift()!()
    await settle()
    expect(calls.n).toBe(2)
    calls.release.shift()!()
    await settle()
    poller.refresh()
    expect(calls.n).toBe(3)
    expect(env.timers.size).toBe(0)
    poller.stop()
  })

  it('stop cancels the timer and the visibility listener', async () => {
    const env = new FakeEnv()
    const { calls, task } = counter()
    const poller = new Poller(task, 5000, env)
    poller.start()
    calls.release.shift()!()
    await settle()
    poller.stop()
    expect(env.timers.size).toBe(0)
    expect(env.listeners.size).toBe(0)
    env.setHidden(false)
    expect(calls.n).toBe(1)
  })
})
