// Build: `npm run build` (or `./dev web` from the repository root, which also regenerates the
// API client). The output in dist/ is committed and served by control/spa.py.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // No inline polyfill script: the strict Content-Security-Policy allows none.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  // `npm run dev` proxies the API to a control plane on the default port.
  server: { proxy: { '/api': 'http://127.0.0.1:8443' } },
  // css: the contrast test reads styles.css?raw, which Vitest would otherwise empty.
  test: { include: ['src/**/*.test.ts'], environment: 'node', css: true },
})
