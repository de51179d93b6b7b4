import { render } from 'preact'
import { App } from './app/App.tsx'
import './styles.css'

const root = document.getElementById('app') as HTMLElement
root.replaceChildren() // the "Loading…" line index.html shows until the script runs
render(<App />, root)
