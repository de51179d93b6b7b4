import { Component, type ComponentChildren } from 'preact'
import { describe } from '../api/problem.ts'
import { translator, lookupOptional, DICTIONARIES, type Locale } from '../i18n/i18n.ts'

interface Props {
  locale: Locale
  resetKey: string
  children: ComponentChildren
}

/** A bug in a page shows a message and a way on, never a blank screen. */
export class ErrorBoundary extends Component<Props, { error: unknown }> {
  state = { error: null as unknown }

  static getDerivedStateFromError(error: unknown) {
    return { error }
  }

  componentDidUpdate(previous: Props) {
    if (previous.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null })
  }

  render() {
    if (!this.state.error) return this.props.children
    const t = translator(this.props.locale)
    const optional = (key: string, fallback: string) => lookupOptional(DICTIONARIES, this.props.locale, key, fallback)
    const { title, detail } = describe(this.state.error, { t, optional })
    return (
      <div class="alert alert-error" role="alert">
        <strong>{title}</strong> {detail}
        <p>
          <a href="/">{t('error.home')}</a>
        </p>
      </div>
    )
  }
}
