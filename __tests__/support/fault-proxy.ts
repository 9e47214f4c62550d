// A fault-injecting HTTP proxy for a real registry: with a seeded probability it
// answers 5xx or 429 itself, resets the connection before or in the middle of a
// response, truncates a body, or stalls. Everything else is forwarded untouched
// (the Host header included, so the registry's upload Locations point back here).
import { request, type IncomingMessage } from 'node:http'
import { createServer, type ServerResponse } from 'node:http'

export const FAULTS = ['500', '502', '503', '429', '429-retry-after', 'reset-before', 'reset-mid-body', 'truncated', 'stall'] as const
export type Fault = (typeof FAULTS)[number]

export interface FaultProxy {
  readonly host: string
  readonly injected: Record<Fault, number>
  requests: number
  rate: number
  stop(): Promise<void>
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export async function startFaultProxy(target: { host: string; port: number }, options: { seed: number; rate: number; stallMs: number }): Promise<FaultProxy> {
  const random = seededRandom(options.seed)
  const injected = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<Fault, number>
  const proxy = { injected, requests: 0, rate: options.rate }
  const sockets = new Set<import('node:net').Socket>()

  const forward = (req: IncomingMessage, res: ServerResponse, onResponse: (upstream: IncomingMessage, body: Buffer) => void): void => {
    const upstreamReq = request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upstream) => {
      const chunks: Buffer[] = []
      upstream.on('data', (c: Buffer) => chunks.push(c))
      upstream.on('end', () => onResponse(upstream, Buffer.concat(chunks)))
    })
    upstreamReq.on('error', () => res.socket?.destroy())
    req.pipe(upstreamReq)
  }
  const passThrough = (upstream: IncomingMessage, body: Buffer, res: ServerResponse): void => {
    res.writeHead(upstream.statusCode ?? 502, upstream.headers)
    res.end(body)
  }

  const server = createServer((req, res) => {
    proxy.requests++
    const fault: Fault | undefined = random() < proxy.rate ? FAULTS[Math.floor(random() * FAULTS.length)] : undefined
    if (fault) injected[fault]++
    switch (fault) {
      case undefined:
        return forward(req, res, (upstream, body) => passThrough(upstream, body, res))
      case '500':
      case '502':
      case '503':
      case '429':
        req.resume()
        return void res.writeHead(Number(fault), { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}')
      case '429-retry-after':
        req.resume()
        return void res.writeHead(429, { 'retry-after': '1' }).end()
      case 'reset-before':
        req.resume()
        return void req.socket.destroy()
      case 'stall':
        req.resume()
        return void setTimeout(() => req.socket.destroy(), options.stallMs)
      case 'reset-mid-body':
      case 'truncated':
        // The request reaches the registry (a write happens), and the answer is lost on the way back.
        return forward(req, res, (upstream, body) => {
          res.writeHead(upstream.statusCode ?? 502, { ...upstream.headers, 'content-length': String(Math.max(body.length, 2)) })
          res.write(body.subarray(0, Math.floor(body.length / 2)))
          if (fault === 'truncated') res.socket?.end()
          else res.socket?.destroy()
        })
    }
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  return Object.assign(proxy, {
    host: `127.0.0.1:${port}`,
    async stop() {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    }
  })
}
