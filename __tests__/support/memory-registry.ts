// A small in-memory OCI registry for what Distribution 2.8 cannot do: serve the
// OCI 1.1 referrers API, or misbehave on cue. Blobs are kept whole in memory; test images only.
import { createHash, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

interface StoredManifest {
  readonly mediaType: string
  readonly bytes: Buffer
}

export interface MemoryRegistryOptions {
  /** Serve GET /v2/<name>/referrers/<digest> (default true). */
  readonly referrersApi?: boolean
  /** Hostile: answer the fallback tag sha256-<hex> with the subject manifest itself, as some registries do. */
  readonly fallbackTagIsSubject?: boolean
}

export interface MemoryRegistry {
  readonly url: string
  readonly host: string
  readonly requests: string[]
  tags(repository: string): string[]
  manifest(repository: string, reference: string): StoredManifest | undefined
  stop(): Promise<void>
}

const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export async function startMemoryRegistry(options: MemoryRegistryOptions = {}): Promise<MemoryRegistry> {
  const blobs = new Map<string, Buffer>()
  const manifests = new Map<string, Map<string, StoredManifest>>()
  const requests: string[] = []
  const repo = (name: string): Map<string, StoredManifest> => {
    let m = manifests.get(name)
    if (!m) manifests.set(name, (m = new Map()))
    return m
  }
  const reply = (res: ServerResponse, status: number, headers: Record<string, string> = {}, payload?: Buffer | string): void => {
    res.writeHead(status, headers).end(payload)
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    requests.push(`${req.method} ${url.pathname}${url.search}`)
    const path = url.pathname
    if (path === '/v2/') return reply(res, 200, {}, '{}')
    const match = /^\/v2\/(.+?)\/(blobs\/uploads|manifests|blobs|referrers)\/(.*)$/.exec(path)
    if (!match) return reply(res, 404)
    const [, name, kind, reference] = match as unknown as [string, string, string, string]
    const data = await body(req)
    if (kind === 'blobs/uploads') {
      if (req.method === 'POST') return reply(res, 202, { location: `/v2/${name}/blobs/uploads/${randomUUID()}`, 'content-length': '0' })
      if (req.method === 'PUT') {
        const digest = url.searchParams.get('digest') ?? ''
        if (digestOf(data) !== digest) return reply(res, 400, { 'content-type': 'application/json' }, '{"errors":[{"code":"DIGEST_INVALID"}]}')
        blobs.set(digest, data)
        return reply(res, 201, { location: `/v2/${name}/blobs/${digest}`, 'docker-content-digest': digest })
      }
    }
    if (kind === 'blobs') {
      const blob = blobs.get(reference)
      if (!blob) return reply(res, 404)
      return reply(res, 200, { 'content-length': String(blob.length), 'docker-content-digest': reference }, req.method === 'HEAD' ? undefined : blob)
    }
    if (kind === 'manifests') {
      const store = repo(name)
      if (req.method === 'PUT') {
        const stored = { mediaType: String(req.headers['content-type']), bytes: data }
        const digest = digestOf(data)
        store.set(digest, stored)
        if (!reference.startsWith('sha256:')) store.set(reference, stored)
        const subject = (JSON.parse(data.toString()) as { subject?: { digest: string } }).subject
        return reply(res, 201, { 'docker-content-digest': digest, ...(subject && options.referrersApi !== false ? { 'oci-subject': subject.digest } : {}) })
      }
      let found = store.get(reference)
      if (options.fallbackTagIsSubject && /^sha256-[a-f0-9]{64}$/.test(reference)) found = store.get(reference.replace('-', ':'))
      if (!found) return reply(res, 404, { 'content-type': 'application/json' }, '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
      return reply(
        res,
        200,
        { 'content-type': found.mediaType, 'docker-content-digest': digestOf(found.bytes), 'content-length': String(found.bytes.length) },
        req.method === 'HEAD' ? undefined : found.bytes
      )
    }
    if (kind === 'referrers' && options.referrersApi !== false) {
      const listed = [...repo(name).entries()]
        .filter(([key]) => key.startsWith('sha256:'))
        .flatMap(([digest, m]) => {
          const parsed = JSON.parse(m.bytes.toString()) as {
            subject?: { digest: string }
            artifactType?: string
            config?: { mediaType: string }
            annotations?: Record<string, string>
          }
          if (parsed.subject?.digest !== reference) return []
          return [
            {
              mediaType: m.mediaType,
              digest,
              size: m.bytes.length,
              artifactType: parsed.artifactType ?? parsed.config?.mediaType,
              ...(parsed.annotations ? { annotations: parsed.annotations } : {})
            }
          ]
        })
      return reply(
        res,
        200,
        { 'content-type': 'application/vnd.oci.image.index.v1+json' },
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: listed })
      )
    }
    return reply(res, 404)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    tags: (name) => [...repo(name).keys()].filter((k) => !k.startsWith('sha256:')),
    manifest: (name, reference) => repo(name).get(reference),
    async stop() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
}
