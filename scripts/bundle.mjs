// Bundles src/ into the single ESM file the runner executes (action.yml: dist/index.js).
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'

await rm(new URL('../dist', import.meta.url), { recursive: true, force: true })
await build({
  entryPoints: ['src/index.ts'],
  outdir: 'dist',
  // Sigstore and the GitHub API client are imported on demand into their own chunks.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  minify: true,
  sourcemap: false,
  legalComments: 'linked',
  // CommonJS dependencies call require() for Node built-ins; ESM has none of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning'
})
