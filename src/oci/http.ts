// The slice of undici the registry client uses: an Agent, the proxy agent, and
// request(). They are imported by path, not from undici's index, because the
// index loads fetch, WebSocket, the cache stores, the mock agents, HTTP/2 and the
// Milo parser as well: about 700 kB of code and a dozen Node built-ins that a
// promotion never runs, which made module loading most of a retag's wall time
// (bench/RESULTS.md). undici is pinned (package.json), so these paths are fixed.
import type { Dispatcher } from 'undici'
import Agent from 'undici/lib/dispatcher/agent.js'
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js'
import dispatcherRequest from 'undici/lib/api/api-request.js'

export { Agent, EnvHttpProxyAgent }

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'>

/** undici's request(url, { dispatcher }), without the index that defines it. */
export function request(dispatcher: Dispatcher, url: URL, options: RequestOptions): Promise<Dispatcher.ResponseData> {
  return dispatcherRequest.call(dispatcher, {
    ...options,
    origin: url.origin,
    path: `${url.pathname}${url.search}`
  })
}
