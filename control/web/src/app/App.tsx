// The application shell: session, language, location and the route table, all in one place.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { createApi, unwrap } from '../api/client.ts'
import { ApiError } from '../api/problem.ts'
import type { Me, SessionInfo } from '../api/types.ts'
import { ErrorBoundary } from '../components/ErrorBoundary.tsx'
import { Layout } from '../components/Layout.tsx'
import { Loading } from '../components/Loading.tsx'
import { ProblemAlert } from '../components/ProblemAlert.tsx'
import { DICTIONARIES, detectLocale, lookupOptional, translator, type Locale } from '../i18n/i18n.ts'
import { resolve, safeNext } from '../lib/routes.ts'
import { NotFound } from '../pages/NotFound.tsx'
import { AppContext, membershipOf, OrgContext, useApp, type AppContextValue, type Location, type NavigateOptions } from './context.ts'
import { ROUTES } from './routes.ts'

const LOCALE_KEY = 'kokoa.locale' // the language choice is the only thing we store locally

type Auth = 'loading' | 'anonymous' | 'signed-in'

function readLocation(): Location {
  const { pathname, search, hash } = window.location
  return { path: pathname, search, hash }
}

function storedLocale(): string | null {
  try {
    return window.localStorage.getItem(LOCALE_KEY)
  } catch {
    return null
  }
}

export function App() {
  const [locale, setLocaleState] = useState<Locale>(() => detectLocale(storedLocale(), navigator.languages))
  const [location, setLocation] = useState<Location>(readLocation)
  const [auth, setAuth] = useState<Auth>('loading')
  const [bootError, setBootError] = useState<unknown>(null)
  const [me, setMe] = useState<Me | null>(null)
  const [notice, setNotice] = useState('')
  const csrf = useRef<string | null>(null)

  const sessionEnded = useCallback(() => {
    csrf.current = null
    setMe(null)
    setAuth('anonymous')
  }, [])
  const api = useMemo(() => createApi({ csrfToken: () => csrf.current, onSessionEnded: sessionEnded }), [sessionEnded])

  const navigate = useCallback((to: string, options: NavigateOptions = {}) => {
    if (options.replace) window.history.replaceState(null, '', to)
    else window.history.pushState(null, '', to)
    setLocation({ ...readLocation(), navigated: true })
    if (!options.replace) window.scrollTo(0, 0)
  }, [])

  const refreshMe = useCallback(async () => {
    setMe(await unwrap(api.GET('/api/v1/me')))
  }, [api])

  const signedIn = useCallback(
    async (info: SessionInfo) => {
      csrf.current = info.csrf_token
      await refreshMe()
      setAuth('signed-in')
    },
    [refreshMe],
  )

  const boot = useCallback(async () => {
    setBootError(null)
    try {
      await signedIn(await unwrap(api.GET('/api/v1/auth/session')))
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) sessionEnded()
      else setBootError(error)
    }
  }, [api, signedIn, sessionEnded])

  useEffect(() => {
    void boot()
    const onPop = () => setLocation({ ...readLocation(), navigated: true })
    window.addEventListener('popstate', onPop)
    return () => window.removeEventListener('popstate', onPop)
  }, [boot])

  useEffect(() => {
    document.documentElement.lang = locale
  }, [locale])

  useEffect(() => {
    if (!notice) return
    const timer = window.setTimeout(() => setNotice(''), 6000)
    return () => window.clearTimeout(timer)
  }, [notice])

  const value: AppContextValue = useMemo(
    () => ({
      api,
      locale,
      setLocale(next: Locale) {
        setLocaleState(next)
        try {
          window.localStorage.setItem(LOCALE_KEY, next)
        } catch {
          // private mode: the choice lasts for this page only
        }
      },
      t: translator(locale),
      optional: (key: string, fallback: string) => lookupOptional(DICTIONARIES, locale, key, fallback),
      me,
      signedIn,
      refreshMe,
      async refreshSession() {
        await signedIn(await unwrap(api.GET('/api/v1/auth/session')))
      },
      async signOut() {
        try {
          await unwrap(api.POST('/api/v1/auth/logout'))
        } finally {
          sessionEnded()
          navigate('/signin')
        }
      },
      location,
      navigate,
      notify: setNotice,
    }),
    [api, locale, me, signedIn, refreshMe, sessionEnded, location, navigate],
  )

  return (
    <AppContext.Provider value={value}>
      <Layout>
        <ErrorBoundary locale={locale} resetKey={location.path}>
          <Routed auth={auth} bootError={bootError} retry={boot} />
        </ErrorBoundary>
      </Layout>
      <div class="notice" role="status" aria-live="polite">
        {notice}
      </div>
    </AppContext.Provider>
  )
}

function Redirect({ to }: { to: string }) {
  const { navigate } = useApp()
  useEffect(() => navigate(to, { replace: true }), [to, navigate])
  return null
}

function Routed({ auth, bootError, retry }: { auth: Auth; bootError: unknown; retry(): void }) {
  const { location, me, t } = useApp()
  if (bootError) {
    return (
      <div>
        <ProblemAlert error={bootError} />
        <button type="button" onClick={retry}>
          {t('common.retry')}
        </button>
      </div>
    )
  }
  if (auth === 'loading') return <Loading />
  const match = resolve(ROUTES, location.path)
  if (!match) return <NotFound />
  const { route, params } = match
  const here = location.path + location.search + location.hash
  if (route.access === 'guest' && auth === 'signed-in') {
    return <Redirect to={safeNext(new URLSearchParams(location.search).get('next'))} />
  }
  if (route.access !== 'guest' && route.access !== 'any' && auth !== 'signed-in') {
    return <Redirect to={`/signin?next=${encodeURIComponent(here)}`} />
  }
  const Page = route.page
  if (route.access !== 'org') return <Page params={params} />
  const membership = membershipOf(me, params.org ?? '')
  if (!membership) return <NotFound />
  return (
    <OrgContext.Provider value={{ id: membership.org_id, name: membership.org_name, role: membership.role }}>
      <Page params={params} />
    </OrgContext.Provider>
  )
}
