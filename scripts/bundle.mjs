// Bundles src/ into the single ESM file the runner executes (action.yml: dist/index.js).
import { build } from 'esbuild'
import { rm, writeFile } from 'node:fs/promises'

// @actions/core imports @actions/http-client (for getIDToken) and @actions/exec (for
// core.platform), neither of which we call; http-client imports http, https, tunnel
// and undici's whole index, exec imports child_process and @actions/io. None of these
// packages says in package.json that its modules have no side effects (they have none
// beyond defining things), so esbuild kept every import and each run spent ~100 ms
// loading code before its first request. Declaring their modules pure lets tree
// shaking drop what no code reaches; the chunks that do use them (@actions/github,
// credential helpers) still hold them.
const PURE_PACKAGE = /^@actions\/(core|http-client|exec|io)(\/|$)/
const IN_PURE_PACKAGE = /node_modules[\\/]@actions[\\/](core|http-client|exec|io)[\\/](?!.*node_modules)/
const declarePure = {
  name: 'declare-pure',
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'declare-pure') return undefined
      if (!PURE_PACKAGE.test(args.path) && !(IN_PURE_PACKAGE.test(args.importer) && args.path.startsWith('.'))) return undefined
      const { path, namespace, external, errors } = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'declare-pure'
      })
      if (errors.length > 0) return { errors }
      return external || namespace !== 'file' ? undefined : { path, sideEffects: false }
    })
  }
}

// undici's HTTP/1.1 client requires its HTTP/2 client (and with it node:http2 and node:tls,
// ~13 ms to load) at start-up whether or not a connection ever negotiates h2. The registry
// client sets allowH2: false (src/oci/transport.ts), so ALPN never offers h2 and the HTTP/2
// client is replaced by a function that says why it is missing, should that ever change.
const withoutHttp2 = {
  name: 'without-http2',
  setup(build) {
    build.onResolve({ filter: /^\.\/client-h2\.js$/ }, (args) =>
      /undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/.test(args.importer) ? { path: 'undici-client-h2', namespace: 'without-http2' } : undefined
    )
    build.onLoad({ filter: /.*/, namespace: 'without-http2' }, () => ({
      contents: "module.exports = () => { throw new Error('HTTP/2 is not bundled: the registry client sets allowH2: false') }",
      loader: 'js'
    }))
  }
}

await rm(new URL('../dist', import.meta.url), { recursive: true, force: true })
const result = await build({
  // The action (index.js) and the CLI (cli.js) share their chunks.
  entryPoints: ['src/index.ts', 'src/cli.ts'],
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
  plugins: [declarePure, withoutHttp2],
  // undici's hook for bundlers (Node.js core defines it): leaves out the experimental Milo
  // HTTP parser, ~165 kB that llhttp, the default parser, makes unused.
  define: { esbuildDetection: 'true' },
  // BUNDLE_METAFILE=path writes esbuild's metafile: what each chunk holds (https://esbuild.github.io/analyze/).
  metafile: Boolean(process.env.BUNDLE_METAFILE),
  logLevel: 'warning'
})
if (process.env.BUNDLE_METAFILE) await writeFile(process.env.BUNDLE_METAFILE, JSON.stringify(result.metafile))
