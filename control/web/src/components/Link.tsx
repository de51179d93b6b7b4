import type { ComponentChildren, TargetedMouseEvent } from 'preact'
import { useApp } from '../app/context.ts'
import { shouldRouteClick } from '../lib/routes.ts'

interface Props {
  href: string
  children: ComponentChildren
  onClick?: () => void
  class?: string
  'aria-current'?: 'page' | undefined
  'aria-label'?: string
}

/** An ordinary link (works with a middle click, copy, screen readers) that the app routes. */
export function Link({ href, children, onClick, ...rest }: Props) {
  const { navigate } = useApp()
  const click = (event: TargetedMouseEvent<HTMLAnchorElement>) => {
    if (!shouldRouteClick(event, event.currentTarget, window.location.origin)) return
    event.preventDefault()
    onClick?.()
    navigate(href)
  }
  return (
    <a {...rest} href={href} onClick={click}>
      {children}
    </a>
  )
}
