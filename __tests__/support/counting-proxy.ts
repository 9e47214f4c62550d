// Docker Hub's pull accounting in front of the real registry: answers manifest requests with the rate-limit headers
// Docker Hub documents (https://docs.docker.com/docker-hub/usage/pulls/): every manifest GET is a pull and lowers
// RateLimit-Remaining; a HEAD is not and does not.
import { pathOf, startRegistryProxy } from './registry-proxy.ts'

export interface CountingProxy {
  readonly host: string
  /** `GET /v2/lib/app/manifests/build`, in order. */
  readonly seen: string[]
  manifestGets(): number
  stop(): Promise<void>
}

export async function startCountingProxy(target: { host: string; port: number }, limit = 100): Promise<CountingProxy> {
  let remaining = limit
  const proxy = await startRegistryProxy(target, [
    {
      respond(req, answer) {
        if (!pathOf(req).includes('/manifests/')) return answer
        if (req.method === 'GET') remaining--
        return { ...answer, headers: { ...answer.headers, 'ratelimit-limit': `${limit};w=21600`, 'ratelimit-remaining': `${remaining};w=21600` } }
      }
    }
  ])
  return {
    host: proxy.host,
    seen: proxy.seen,
    manifestGets: () => proxy.seen.filter((l) => l.startsWith('GET ') && l.includes('/manifests/')).length,
    stop: () => proxy.stop()
  }
}
