// A hand-written registry for what a real one cannot be made to do: lie about
// digests, redirect to other origins, send oversized or malformed bodies.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { contentOf, type Image } from '../../scripts/lib/images.ts'

export interface SeenRequest {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
}

export type Route = (req: IncomingMessage, res: ServerResponse) => boolean | void

export interface FakeServer {
  readonly url: string
  readonly host: string
  readonly seen: SeenRequest[]
  stop(): Promise<void>
}

export async function startFakeServer(route: Route): Promise<FakeServer> {
  const seen: SeenRequest[] = []
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization })
    req.resume()
    // A route that answers nothing and returns nothing leaves the request hanging: a stall.
    if (route(req, res) === false && !res.headersSent) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN"}]}')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    seen,
    async stop() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
}

export interface ServeOptions {
  readonly repository: string
  readonly tag: string
  /** Replaces what GET manifest returns for the image. */
  readonly manifestBytes?: (image: Image) => Buffer
  readonly digestHeader?: (image: Image) => string | undefined
  /** Where blob GETs are sent instead of being served here. */
  readonly blobRedirect?: (digest: string) => string | undefined
  readonly blobBytes?: (digest: string, bytes: Buffer) => Buffer
  /** Basic credentials the server demands, as user:password. */
  readonly basic?: string
}

/** Routes that serve one image read-only, with the given lies. */
export function serveImage(image: Image, options: ServeOptions): Route {
  const { blobs, manifests } = contentOf(image)
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (options.basic && req.headers.authorization !== `Basic ${Buffer.from(options.basic).toString('base64')}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end()
      return
    }
    if (path === '/v2/') {
      res.writeHead(200).end('{}')
      return
    }
    const prefix = `/v2/${options.repository}/`
    if (!path.startsWith(prefix)) return false
    const [kind, reference] = path.slice(prefix.length).split('/') as [string, string]
    if (kind === 'manifests') {
      const manifest = reference === options.tag ? image : manifests.find((m) => m.digest === reference)
      if (!manifest) return false
      const bytes = manifest === image && options.manifestBytes ? options.manifestBytes(image) : manifest.bytes
      const digest = manifest === image && options.digestHeader ? options.digestHeader(image) : manifest.digest
      res.writeHead(200, {
        'content-type': manifest.mediaType,
        'content-length': String(bytes.length),
        ...(digest ? { 'docker-content-digest': digest } : {})
      })
      res.end(req.method === 'HEAD' ? undefined : bytes)
      return
    }
    if (kind === 'blobs') {
      const blob = blobs.find((b) => b.digest === reference)
      if (!blob) return false
      const redirect = options.blobRedirect?.(blob.digest)
      if (redirect) {
        res.writeHead(307, { location: redirect }).end()
        return
      }
      const bytes = options.blobBytes ? options.blobBytes(blob.digest, blob.bytes) : blob.bytes
      res.writeHead(200, { 'content-length': String(bytes.length), 'docker-content-digest': blob.digest })
      res.end(req.method === 'HEAD' ? undefined : bytes)
      return
    }
    return false
  }
}
