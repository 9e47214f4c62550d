// The bundle reaches into undici's private files for start-up time (src/oci/http.ts) and replaces its HTTP/2
// client (scripts/bundle.mjs). A dependency update that moves those files must fail here, in CI, rather than
// ship a bundle that silently loads all of undici again or breaks at a user's runner.
import { describe, expect, it } from '@jest/globals'
import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const bundled = [
  readFileSync(`${dist}index.js`, 'utf8'),
  ...readdirSync(`${dist}chunks`)
    .filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(`${dist}chunks/${f}`, 'utf8'))
]

describe("undici's private files the client imports by path", () => {
  it.each([
    ['undici/lib/dispatcher/agent.js', 'Agent'],
    ['undici/lib/dispatcher/env-http-proxy-agent.js', 'EnvHttpProxyAgent'],
    ['undici/lib/api/api-request.js', 'request']
  ])('%s still exists and is %s', (path, name) => {
    const exported = require(path) as { name?: string }
    expect(typeof exported).toBe('function')
    expect(exported.name).toBe(name)
  })

  it('the HTTP/2 client is still the file the bundler replaces, so the registry client loads no node:http2', () => {
    expect(readFileSync(require.resolve('undici/lib/dispatcher/client.js'), 'utf8')).toContain("require('./client-h2.js')")
    const registryClient = bundled.filter((code) => code.includes('HTTP/2 is not bundled'))
    expect(registryClient).toHaveLength(1)
    // The entry and the chunk holding undici's client; keyless signing (@sigstore/sign's own fetch) is a chunk apart.
    for (const code of [bundled[0]!, ...registryClient]) expect(code).not.toMatch(/["']node:http2["']|["']http2["']/)
  })
})
