// A registry that caps request bodies, in front of the real registry: Cloudflare's serverless registry answers 413
// above its Workers limit and announces OCI-Chunk-Max-Length on the upload's POST; ghcr.io documents a PATCH chunk
// limit. Requests within the cap are forwarded untouched.
import { request, type IncomingMessage } from 'node:http'
import { ociError, pathOf, startRegistryProxy, type RegistryProxyOptions } from './registry-proxy.ts'

export interface BodyCapOptions extends RegistryProxyOptions {
  readonly maxBody: number
  /** Say the cap in OCI-Chunk-Max-Length when an upload starts (Cloudflare does; a plain 413 does not). */
  readonly announce: boolean
  /** Announce this maximum instead of the real cap (a registry that says less than it takes). */
  readonly announced?: number
  /** Forward the PATCH with this number (1-based) to the registry, then break the connection before answering. */
  readonly breakPatch?: number
  /** Forward only the first half of the PATCH with this number (1-based) to the registry, then break the connection: a chunk that landed in part. */
  readonly halfPatch?: number
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

const isWrite = (method: string | undefined): boolean => method === 'PUT' || method === 'PATCH'

export async function startBodyCapProxy(target: { host: string; port: number }, options: BodyCapOptions): Promise<BodyCapProxy> {
  const seen: string[] = []
  let patches = 0
  let patchesArrived = 0
  // Per upload (its path), the latest location the registry handed out.
  const latest = new Map<string, string>()
  const remember = (location: string): void => {
    const next = new URL(location, 'http://x')
    latest.set(next.pathname, next.pathname + next.search)
  }
  const proxy = await startRegistryProxy(
    target,
    [
      {
        answer(req, res) {
          const length = Number(req.headers['content-length'] ?? 0)
          if (!isWrite(req.method)) return false
          if (length <= options.maxBody) {
            seen.push(`${req.method} ${length}`)
            if (req.method === 'PATCH' && ++patchesArrived === options.halfPatch) {
              landHalf(target, req, remember, () => res.socket?.destroy())
              return true
            }
            return false
          }
          seen.push(`${req.method} 413`)
          return ociError(res, 413, 'SIZE_INVALID', `request body over ${options.maxBody} bytes`)
        },
        rewrite(req) {
          const path = pathOf(req)
          if (options.statusOnAnyLocation && req.method === 'GET' && path.includes('/blobs/uploads/') && latest.has(path)) req.url = latest.get(path)
        },
        respond(req, answer) {
          if (answer.headers.location) remember(answer.headers.location)
          if (req.method === 'PATCH' && ++patches === options.breakPatch) return 'break'
          const announce = options.announce && req.method === 'POST' && /\/blobs\/uploads\/$/.test(pathOf(req))
          return announce ? { ...answer, headers: { ...answer.headers, 'oci-chunk-max-length': String(options.announced ?? options.maxBody) } } : answer
        }
      }
    ],
    options
  )
  return { host: proxy.host, seen, stop: () => proxy.stop() }
}

/** Reads the PATCH's body, sends its first half to the registry as a PATCH of its own, then calls `broken`. */
function landHalf(target: { host: string; port: number }, req: IncomingMessage, landed: (location: string) => void, broken: () => void): void {
  const parts: Buffer[] = []
  req.on('data', (d: Buffer) => parts.push(d))
  req.on('end', () => {
    const body = Buffer.concat(parts)
    const half = body.subarray(0, Math.floor(body.length / 2))
    const start = Number(/^(\d+)-/.exec(String(req.headers['content-range']))?.[1] ?? 0)
    const headers = { ...req.headers, 'content-length': String(half.length), 'content-range': `${start}-${start + half.length - 1}` }
    const upstream = request({ host: target.host, port: target.port, method: 'PATCH', path: req.url, headers }, (answer) => {
      answer.resume()
      if (answer.headers.location) landed(answer.headers.location)
      broken()
    })
    upstream.on('error', broken)
    upstream.end(half)
  })
}
