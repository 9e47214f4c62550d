// A registry that caps request bodies, in front of the real registry: Cloudflare's serverless registry answers 413
// above its Workers limit and announces OCI-Chunk-Max-Length on the upload's POST; ghcr.io documents a PATCH chunk
// limit. Requests within the cap are forwarded untouched (Host included, so upload Locations point back here).
import { createServer, request } from 'node:http'

export interface BodyCapOptions {
  readonly maxBody: number
  /** Say the cap in OCI-Chunk-Max-Length when an upload starts (Cloudflare does; a plain 413 does not). */
  readonly announce: boolean
  /** Forward the PATCH with this number (1-based) to the registry, then break the connection before answering. */
  readonly breakPatch?: number
  /**
   * Answer an upload-status GET on any location of the upload, as the distribution spec describes it
   * (GET /v2/<name>/blobs/uploads/<reference>). Distribution 2.8 answers it only on the location its last PATCH
   * returned (its _state token); with this the proxy asks with that one.
   */
  readonly statusOnAnyLocation?: boolean
}

export interface BodyCapProxy {
  readonly host: string
  /** `PATCH 65536`, `PUT 0`, `PUT 413`: method and body size, or 413 when refused. */
  readonly seen: string[]
  stop(): Promise<void>
}

export async function startBodyCapProxy(target: { host: string; port: number }, options: BodyCapOptions): Promise<BodyCapProxy> {
  const seen: string[] = []
  let patches = 0
  // Per upload (its path), the latest location the registry handed out.
  const latest = new Map<string, string>()
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (options.statusOnAnyLocation && req.method === 'GET' && path.includes('/blobs/uploads/') && latest.has(path)) req.url = latest.get(path)
    const length = Number(req.headers['content-length'] ?? 0)
    if ((req.method === 'PUT' || req.method === 'PATCH') && length > options.maxBody) {
      seen.push(`${req.method} 413`)
      req.resume()
      res
        .writeHead(413, { 'content-type': 'application/json' })
        .end(JSON.stringify({ errors: [{ code: 'SIZE_INVALID', message: `request body over ${options.maxBody} bytes` }] }))
      return
    }
    if (req.method === 'PUT' || req.method === 'PATCH') seen.push(`${req.method} ${length}`)
    const breakThis = req.method === 'PATCH' && ++patches === options.breakPatch
    const upstream = request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const location = answer.headers.location
      if (location) latest.set(new URL(location, 'http://x').pathname, new URL(location, 'http://x').pathname + new URL(location, 'http://x').search)
      if (breakThis) {
        answer.resume()
        res.socket?.destroy()
        return
      }
      const announce = options.announce && req.method === 'POST' && /\/blobs\/uploads\/$/.test(new URL(req.url ?? '/', 'http://x').pathname)
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, ...(announce ? { 'oci-chunk-max-length': String(options.maxBody) } : {}) })
      answer.pipe(res)
    })
    upstream.on('error', () => res.socket?.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    async stop() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
}
