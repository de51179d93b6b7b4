export function LabelChips({ labels }: { labels: Record<string, string> }) {
  const entries = Object.entries(labels)
  if (entries.length === 0) return <>—</>
  return (
    <>
      {entries.map(([k, v]) => (
        <span key={k} class="chip">
          {k}={v}
        </span>
      ))}
    </>
  )
}
