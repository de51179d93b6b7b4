import type { ComponentChildren } from 'preact'
import { useEffect, useRef } from 'preact/hooks'
import { useApp } from '../app/context.ts'

/** The page's <h1>, the document title, and where focus goes after navigating (so screen
 * readers announce the new page). */
export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  const { location } = useApp()
  const ref = useRef<HTMLHeadingElement>(null)
  useEffect(() => {
    document.title = `${title} · Kokoa`
  }, [title])
  useEffect(() => {
    // Not on the first page load: there the first Tab reaches "Skip to content", as on any page.
    if (!location.navigated) return
    if (document.activeElement === document.body || document.activeElement?.closest('nav, .page-header')) {
      ref.current?.focus()
    }
  }, [location.path, location.navigated])
  return (
    <div class="page-header">
      <h1 ref={ref} tabIndex={-1}>
        {title}
      </h1>
      {children && <div class="page-actions">{children}</div>}
    </div>
  )
}
