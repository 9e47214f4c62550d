// A proxy of the tests' own in front of the real registry, for what Distribution itself does not do: each
// behaviour reproduces one documented deviation of a registry family (support/families.ts), a body cap, or a
// rate-limit header. Requests are forwarded with their Host header, so the registry's upload Locations point back
// at the proxy; what a behaviour does not touch passes through untouched.
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { Transform } from 'node:stream'

export interface ProxyAnswer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
}

export interface ProxyBehaviour {
  /** Answers the request itself instead of forwarding it; returns true when it did. */
  readonly answer?: (req: IncomingMessage, res: ServerResponse) => boolean
  /** Changes the request (its url, its headers) before it is forwarded. */
  readonly rewrite?: (req: IncomingMessage) => void
  /** Changes the registry's answer before it goes back (the body passes as it is), or breaks the connection instead. */
  readonly respond?: (req: IncomingMessage, answer: ProxyAnswer) => ProxyAnswer | 'break'
}

export interface RegistryProxy {
  readonly host: string
  readonly url: string
  /** `GET /v2/lib/app/manifests/build`, in order: method and path as the client sent them (query left off). */
  readonly seen: string[]
  stop(): Promise<void>
}

export interface RegistryProxyOptions {
  /**
   * Each request and response body passes at no more than this rate, as over a network whose per-connection
   * throughput is bounded (round-trip time × window) rather than over loopback, where reading and sending are
   * nearly free, and a client that stops reading while it sends loses nothing it can see.
   */
  readonly bytesPerSecond?: number
}

/** Passes bytes on no faster than `bytesPerSecond`, from when the first one came. */
function paced(bytesPerSecond: number): Transform {
  let started: number | undefined
  let sent = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      started ??= performance.now()
      sent += chunk.length
      const due = started + (sent / bytesPerSecond) * 1000
      setTimeout(() => done(null, chunk), Math.max(0, due - performance.now()))
    }
  })
}

export async function startRegistryProxy(
  target: { host: string; port: number },
  behaviours: readonly ProxyBehaviour[],
  options: RegistryProxyOptions = {}
): Promise<RegistryProxy> {
  const seen: string[] = []
  const rate = options.bytesPerSecond
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`)
    if (behaviours.some((b) => b.answer?.(req, res))) {
      // An answer that forwards the body elsewhere has it flowing already; any other leaves it to be drained.
      if (req.readableFlowing !== true) req.resume()
      return
    }
    for (const b of behaviours) b.rewrite?.(req)
    const upstream = request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (registry) => {
      let answer: ProxyAnswer | 'break' = { status: registry.statusCode ?? 502, headers: registry.headers }
      for (const b of behaviours) if (answer !== 'break' && b.respond) answer = b.respond(req, answer)
      if (answer === 'break') {
        registry.resume()
        res.socket?.destroy()
        return
      }
      res.writeHead(answer.status, answer.headers)
      ;(rate === undefined ? registry : registry.pipe(paced(rate))).pipe(res)
    })
    upstream.on('error', () => res.socket?.destroy())
    ;(rate === undefined ? req : req.pipe(paced(rate))).pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const host = `127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    host,
    url: `http://${host}`,
    seen,
    async stop() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
}

/** The registry's target as `{ host, port }` from `127.0.0.1:PORT`. */
export function targetOf(registryHost: string): { host: string; port: number } {
  const [host, port] = registryHost.split(':') as [string, string]
  return { host, port: Number(port) }
}

/** The path of a request, without its query. */
export function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://x').pathname
}

/** An OCI error body, as registries answer refusals (distribution-spec "Error Codes"). */
export function ociError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): true {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ errors: [{ code, message }] }))
  return true
}
