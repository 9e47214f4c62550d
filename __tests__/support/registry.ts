// Starts the CNCF Distribution registry (Debian's docker-registry) on loopback
// for a test file, anonymous, with htpasswd Basic auth, or with a token server.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { contentOf, type Image } from '../../scripts/lib/images.ts'
import { cpuMs } from '../../scripts/lib/runner.ts'

export const HTPASSWD = fileURLToPath(new URL('../fixtures/htpasswd', import.meta.url))
export const USERS = {
  promoter: 'Promoter-pa55',
  reader: 'Reader-pa55'
} as const

const BINARY = 'docker-registry'

export function registryBinary(): string {
  const found = spawnSync('sh', ['-c', `command -v ${BINARY}`], { encoding: 'utf8' })
  const path = found.stdout.trim()
  if (found.status !== 0 || path === '') {
    throw new Error(
      `${BINARY} (the CNCF Distribution registry) is not installed, and these tests run against it. ` +
        'Run the whole suite with `bash scripts/test.sh`, which installs it, or `apt-get install docker-registry`.'
    )
  }
  return path
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

export interface TokenAuthConfig {
  readonly realm: string
  readonly service: string
  readonly issuer: string
  readonly rootCertBundle: string
}

export interface RegistryOptions {
  readonly auth?: { readonly htpasswd: string } | { readonly token: TokenAuthConfig }
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT`, the registry part of references. */
  readonly host: string
  readonly url: string
  /** CPU time the registry process has used so far (user and system), where /proc says; 0 elsewhere. */
  cpuMs(): number
  stop(): Promise<void>
}

function authSection(options: RegistryOptions): string {
  const auth = options.auth
  if (!auth) return ''
  if ('htpasswd' in auth) return `auth:\n  htpasswd:\n    realm: oci-promote-tests\n    path: ${auth.htpasswd}\n`
  const t = auth.token
  return `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.rootCertBundle}\n`
}

async function waitUntilServing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${output()}`)
    try {
      const res = await fetch(`${url}/v2/`)
      if (res.status === 200 || res.status === 401) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`docker-registry did not start within 15 s: ${output()}`)
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const binary = registryBinary()
  const dir = await mkdtemp(join(tmpdir(), 'oci-promote-registry-'))
  const port = await freePort()
  const config = join(dir, 'config.yml')
  await writeFile(
    config,
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: oci-promote-test-secret
${authSection(options)}`
  )
  const child = spawn(binary, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)))
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)))
  const url = `http://127.0.0.1:${port}`
  try {
    await waitUntilServing(url, child, () => output)
  } catch (error) {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    cpuMs: () => (child.pid ? cpuMs(child.pid) : 0),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/**
 * Seeds an image with plain HTTP requests, independent of the client under
 * test: blobs (monolithic POST + PUT), then manifests children first.
 */
export async function pushImage(registryUrl: string, repository: string, tag: string, image: Image, authorization?: string): Promise<void> {
  const headers: Record<string, string> = authorization ? { authorization } : {}
  const { blobs, manifests } = contentOf(image)
  for (const blob of blobs) {
    const head = await fetch(`${registryUrl}/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD', headers })
    if (head.status === 200) continue
    const start = await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers })
    if (start.status !== 202) throw new Error(`seeding ${repository}: POST upload answered ${start.status}`)
    const location = new URL(start.headers.get('location')!, registryUrl)
    location.searchParams.set('digest', blob.digest)
    const put = await fetch(location, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: blob.bytes
    })
    if (put.status !== 201) throw new Error(`seeding ${repository}: PUT blob answered ${put.status}: ${await put.text()}`)
  }
  for (const manifest of manifests) {
    const reference = manifest === image ? tag : manifest.digest
    const put = await fetch(`${registryUrl}/v2/${repository}/manifests/${reference}`, {
      method: 'PUT',
      headers: { ...headers, 'content-type': manifest.mediaType },
      body: manifest.bytes
    })
    if (put.status !== 201) throw new Error(`seeding ${repository}: PUT manifest answered ${put.status}: ${await put.text()}`)
  }
}

/** What a tag points at, read with plain HTTP and hashed here: undefined when absent. */
export async function tagDigest(registryUrl: string, repository: string, tag: string, authorization?: string): Promise<string | undefined> {
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, {
    headers: {
      accept:
        'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json',
      ...(authorization ? { authorization } : {})
    }
  })
  if (res.status === 404) return undefined
  if (res.status !== 200) throw new Error(`GET ${repository}:${tag} answered ${res.status}`)
  const { createHash } = await import('node:crypto')
  return `sha256:${createHash('sha256')
    .update(Buffer.from(await res.arrayBuffer()))
    .digest('hex')}`
}

export async function hasBlob(registryUrl: string, repository: string, digest: string, authorization?: string): Promise<boolean> {
  const res = await fetch(`${registryUrl}/v2/${repository}/blobs/${digest}`, { method: 'HEAD', headers: authorization ? { authorization } : {} })
  return res.status === 200
}

export function basicAuthorization(user: keyof typeof USERS): string {
  return `Basic ${Buffer.from(`${user}:${USERS[user]}`).toString('base64')}`
}

/** A docker config folder (as docker/login-action leaves one) with `auths` for host → "user:password". */
export async function writeDockerConfig(auths: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-promote-docker-config-'))
  const entries = Object.fromEntries(Object.entries(auths).map(([host, userPass]) => [host, { auth: Buffer.from(userPass).toString('base64') }]))
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: entries }))
  return dir
}
