// A registry family's behaviour in front of the real registry: forwards every request to it untouched (Host header
// included, so upload Locations point back here), records what was asked, and answers manifest requests with the
// rate-limit headers Docker Hub documents (https://docs.docker.com/docker-hub/usage/pulls/): every manifest GET
// is a pull and lowers RateLimit-Remaining; a HEAD is not and does not.
import { createServer, request } from 'node:http'

export interface CountingProxy {
  readonly host: string
  /** `GET /v2/lib/app/manifests/build`, in order. */
  readonly seen: string[]
  manifestGets(): number
  stop(): Promise<void>
}

export async function startCountingProxy(target: { host: string; port: number }, limit = 100): Promise<CountingProxy> {
  const seen: string[] = []
  let remaining = limit
  const server = createServer((req, res) => {
    const line = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`
    seen.push(line)
    const manifest = /\/manifests\//.test(line)
    if (manifest && req.method === 'GET') remaining--
    const upstream = request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers, ...(manifest ? { 'ratelimit-limit': `${limit};w=21600`, 'ratelimit-remaining': `${remaining};w=21600` } : {}) }
      res.writeHead(answer.statusCode ?? 502, headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.socket?.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    host: `127.0.0.1:${port}`,
    seen,
    manifestGets: () => seen.filter((l) => l.startsWith('GET ') && l.includes('/manifests/')).length,
    async stop() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
}
