import { useApp } from '../app/context.ts'
import { Link } from '../components/Link.tsx'
import { PageHeader } from '../components/PageHeader.tsx'

export function NotFound() {
  const { t } = useApp()
  return (
    <section>
      <PageHeader title={t('notFound.title')} />
      <p>{t('notFound.body')}</p>
      <p>
        <Link href="/">{t('error.home')}</Link>
      </p>
    </section>
  )
}
