import { setTimeout as sleep } from 'node:timers/promises'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { Agent, EnvHttpProxyAgent, request } from './http.js'
import { PromoteError } from '../errors.js'
import { untrusted } from '../untrusted.js'

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

export interface HttpRequest {
  readonly method: HttpMethod
  readonly url: URL
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: Buffer | Readable | null
}

export type ResponseBody = Dispatcher.ResponseData['body']

export interface HttpResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: ResponseBody
  /** Where the response came from, after redirects. */
  readonly url: URL
}

export interface RetryPolicy {
  /** Further attempts after the first. */
  readonly retries: number
  readonly baseDelayMs: number
  readonly factor: number
  /** Longest single wait, Retry-After included. */
  readonly maxDelayMs: number
}

// Backoff shaped like go-containerregistry's defaultRetryBackoff (1s, 3s, …), a little quicker to start.
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 500, factor: 3, maxDelayMs: 30_000 }
export const NO_RETRY: RetryPolicy = { retries: 0, baseDelayMs: 0, factor: 1, maxDelayMs: 0 }

// https://github.com/google/go-containerregistry/blob/main/pkg/v1/remote/options.go (defaultRetryStatusCodes)
const RETRYABLE_STATUS = new Set([408, 429, 499, 500, 502, 503, 504, 522])
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308])
const MAX_REDIRECTS = 10
// Headers that must never follow a request to another origin (@sigstore/oci SENSITIVE_HEADERS).
const SENSITIVE_HEADERS = ['authorization', 'cookie', 'proxy-authorization']

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT'
])

export interface TransportOptions {
  readonly dispatcher?: Dispatcher
  readonly retry?: RetryPolicy
  readonly userAgent?: string
  /** Aborts every request: the run's overall deadline. */
  readonly signal?: AbortSignal
  /** A line per request and per retry; none are formatted when absent. */
  readonly debug?: (message: string) => void
}

export interface TimeoutOptions {
  readonly connectTimeoutMs?: number
  /** How long a request may wait for response headers, and a body may stall between chunks. */
  readonly idleTimeoutMs?: number
  readonly connections?: number
}

/** One dispatcher per run; proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY as on self-hosted runners. */
export function createDispatcher(options: TimeoutOptions = {}): Dispatcher {
  const agentOptions = {
    connect: { timeout: options.connectTimeoutMs ?? 15_000 },
    headersTimeout: options.idleTimeoutMs ?? 60_000,
    bodyTimeout: options.idleTimeoutMs ?? 60_000,
    connections: options.connections ?? 16,
    // undici 8 offers h2 in ALPN by default. We speak HTTP/1.1 only: blobs stream in parallel over
    // separate connections (the `connections` bound means what it says), it is the protocol every
    // test and benchmark here exercises, and the bundle leaves out undici's HTTP/2 client, whose
    // node:http2 import alone took ~13 ms of every run's start-up (scripts/bundle.mjs).
    allowH2: false
  }
  const env = process.env
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => env[k])
  return proxied ? new EnvHttpProxyAgent(agentOptions) : new Agent(agentOptions)
}

/**
 * The `rel="next"` target of a Link header (RFC 8288): how a registry pages its tag list (distribution-spec, "Listing
 * Tags") and GitHub's REST API its lists (`page` numbers or `after` cursors).
 */
export function nextLink(header: string | undefined): string | undefined {
  for (const part of header?.split(',') ?? []) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part)
    if (match && /(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(match[2]!)) return match[1]
  }
  return undefined
}

/** URL without query or fragment: upload locations and presigned storage URLs carry secrets there. */
export function redactUrl(url: URL): string {
  return `${url.origin}${url.pathname}`
}

export function headerValue(headers: HttpResponse['headers'], name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

function networkError(error: unknown, req: HttpRequest, signal?: AbortSignal): PromoteError {
  if (error instanceof PromoteError) return error
  const where = `${req.method} ${untrusted(redactUrl(req.url))}`
  if (signal?.aborted) {
    return new PromoteError('TIMEOUT', `${where}: the run's deadline passed`, { cause: error })
  }
  const code = (error as { code?: string }).code ?? ''
  const detail = untrusted(error instanceof Error ? error.message : String(error))
  if (code.endsWith('TIMEOUT')) {
    return new PromoteError('TIMEOUT', `${where}: timed out (${detail})`, { cause: error, transient: true })
  }
  return new PromoteError('NETWORK', `${where}: ${detail}${code ? ` (${code})` : ''}`, {
    cause: error,
    transient: TRANSIENT_NETWORK_CODES.has(code)
  })
}

/** Errors from sockets and undici carry a string code; errors thrown by our own handlers do not. */
function isSystemError(error: unknown): boolean {
  return !(error instanceof PromoteError) && typeof (error as { code?: unknown })?.code === 'string'
}

/** Seconds or an HTTP date: https://www.rfc-editor.org/rfc/rfc9110#field.retry-after */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

export function isTransient(error: unknown): boolean {
  return error instanceof PromoteError && error.transient
}

/**
 * Runs an attempt until it succeeds, fails for good, or the policy is spent.
 * The one retry loop in the client: requests use it through `exchange`, and a
 * whole-blob copy uses it around its own request pair.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  attempt: (attemptNumber: number) => Promise<T>,
  options: { signal?: AbortSignal; onRetry?: (error: unknown, delayMs: number) => void } = {}
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n)
    } catch (error) {
      if (!isTransient(error) || n >= policy.retries || options.signal?.aborted) throw error
      const backoff = policy.baseDelayMs * policy.factor ** n
      const jittered = backoff * (0.9 + Math.random() * 0.2)
      const requested = (error as { retryAfterMs?: number }).retryAfterMs
      const delay = Math.min(policy.maxDelayMs, requested ?? jittered)
      options.onRetry?.(error, delay)
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined).catch(() => {
        throw error
      })
    }
  }
}

/** A retryable status, carried through withRetry so the last one can be reported as is. */
export class RetryableStatus extends PromoteError {
  constructor(
    readonly response: HttpResponse,
    readonly retryAfterMs: number | undefined
  ) {
    super('REGISTRY_ERROR', `HTTP ${response.status}`, { transient: true })
  }
}

export class Transport {
  readonly #dispatcher: Dispatcher
  readonly #retry: RetryPolicy
  readonly #userAgent: string
  readonly #signal: AbortSignal | undefined
  readonly #debug: ((message: string) => void) | undefined
  #requestCount = 0

  constructor(options: TransportOptions = {}) {
    this.#dispatcher = options.dispatcher ?? createDispatcher()
    this.#retry = options.retry ?? DEFAULT_RETRY
    this.#userAgent = options.userAgent ?? 'oci-promote'
    this.#signal = options.signal
    this.#debug = options.debug
  }

  get retryPolicy(): RetryPolicy {
    return this.#retry
  }

  get signal(): AbortSignal | undefined {
    return this.#signal
  }

  /** Requests sent so far, redirects and retries included. */
  get requestCount(): number {
    return this.#requestCount
  }

  /**
   * One attempt: sends the request and follows GET/HEAD redirects by hand, so
   * credentials are dropped as soon as a hop leaves the request's origin (blob
   * downloads are redirected to object storage that must not see them).
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    let current = req
    let headers: Record<string, string> = { 'user-agent': this.#userAgent, ...req.headers }
    for (let hop = 0; ; hop++) {
      let res: Dispatcher.ResponseData
      try {
        this.#requestCount++
        res = await request(this.#dispatcher, current.url, {
          method: current.method,
          headers,
          body: current.body ?? null,
          // undici closes the connection after every HEAD (nodejs/undici#258: a server that sends a body with its
          // answer would desynchronise the next one). Registries answer many HEADs (blob and tag probes): a fresh
          // connection, and over TLS a fresh handshake, for each cost more than the probes themselves. A body sent
          // anyway can only garble that registry's own next answer, which is hashed and checked like any other.
          reset: false,
          ...(this.#signal ? { signal: this.#signal } : {})
        })
      } catch (error) {
        throw networkError(error, current, this.#signal)
      }
      this.#debug?.(`${current.method} ${untrusted(redactUrl(current.url))} -> ${res.statusCode}`)
      const response: HttpResponse = {
        status: res.statusCode,
        headers: res.headers,
        body: res.body,
        url: current.url
      }
      const location = headerValue(res.headers, 'location')
      const followable = current.method === 'GET' || current.method === 'HEAD'
      if (!REDIRECT_STATUS.has(res.statusCode) || !location || !followable) return response
      await res.body.dump()
      if (hop >= MAX_REDIRECTS) {
        throw new PromoteError('REDIRECT_REFUSED', `${current.method} ${untrusted(redactUrl(req.url))}: more than ${MAX_REDIRECTS} redirects`)
      }
      const next = new URL(location, current.url)
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new PromoteError('REDIRECT_REFUSED', `${untrusted(redactUrl(current.url))} redirected to a ${untrusted(next.protocol)} URL`)
      }
      if (current.url.protocol === 'https:' && next.protocol === 'http:') {
        throw new PromoteError('REDIRECT_REFUSED', `${untrusted(redactUrl(current.url))} redirected from https to plain http (${untrusted(redactUrl(next))})`)
      }
      if (next.origin !== req.url.origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !SENSITIVE_HEADERS.includes(name.toLowerCase())))
      }
      current = { method: current.method, url: next, headers }
    }
  }

  /**
   * Sends with retries on transient faults and retryable statuses, honouring
   * Retry-After. `handle` reads the response inside the attempt, so a body cut
   * off half-way is retried like a failed request.
   */
  async exchange<T>(
    build: () => HttpRequest | Promise<HttpRequest>,
    handle: (res: HttpResponse) => Promise<T>,
    options: { retry?: RetryPolicy } = {}
  ): Promise<T> {
    const policy = options.retry ?? this.#retry
    let last: HttpRequest | undefined
    try {
      return await withRetry(
        policy,
        async (n) => {
          const req = await build()
          last = req
          const res = await this.send(req)
          if (RETRYABLE_STATUS.has(res.status) && n < policy.retries) {
            await res.body.dump()
            throw new RetryableStatus(res, parseRetryAfter(headerValue(res.headers, 'retry-after')))
          }
          try {
            return await handle(res)
          } catch (error) {
            res.body.destroy()
            throw isSystemError(error) ? networkError(error, req, this.#signal) : error
          }
        },
        {
          ...(this.#signal ? { signal: this.#signal } : {}),
          onRetry: (error, delay) => this.#debug?.(`retrying in ${Math.round(delay)} ms after: ${(error as Error).message}`)
        }
      )
    } catch (error) {
      const final = last && isSystemError(error) ? networkError(error, last, this.#signal) : error
      // Spent retries make a fault final, so an operation retried as a whole (a blob copy) does not retry it again.
      if (final instanceof PromoteError && final.transient && policy.retries > 0) {
        throw new PromoteError(final.code, `${final.message} (gave up after ${policy.retries + 1} attempts)`, { cause: final })
      }
      throw final
    }
  }

  async close(): Promise<void> {
    await this.#dispatcher.close()
  }
}

/** Reads a whole body, refusing more than `maxBytes` (a hostile registry may send an endless one). */
export async function readLimited(res: Pick<HttpResponse, 'headers' | 'body'>, maxBytes: number, label: string): Promise<Buffer> {
  const declared = Number(headerValue(res.headers, 'content-length') ?? NaN)
  if (declared > maxBytes) {
    res.body.destroy()
    throw new PromoteError('MANIFEST_TOO_LARGE', `${label} is ${declared} bytes; more than ${maxBytes} is refused`)
  }
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length
    if (total > maxBytes) {
      res.body.destroy()
      throw new PromoteError('MANIFEST_TOO_LARGE', `${label} is larger than ${maxBytes} bytes; refused`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks, total)
}
