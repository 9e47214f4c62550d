// Wires the real client stack (transport, credentials, stores) for domain tests,
// with a dispatcher that records every request the client sends.
import { Agent, type Dispatcher } from 'undici'
import { DockerCredentials, type DockerCredentialOptions } from '../../src/oci/credentials.ts'
import { Stores } from '../../src/oci/stores.ts'
import { Transport, type RetryPolicy } from '../../src/oci/transport.ts'
import { promoteRelease, type PromoteDependencies, type PromotionRequest, type PromotionResult } from '../../src/promote.ts'
import { parseDestination, parseReference } from '../../src/oci/reference.ts'
import { ImageVerifier, type EvidenceBatch } from '../../src/verify/index.ts'
import type { SignatureVerifier } from '../../src/verify/verifier.ts'
import type { AttestationRule } from '../../src/verify/cel.ts'
import { storeDependencies } from '../../src/run.ts'

export interface RecordedRequest {
  readonly method: string
  readonly origin: string
  readonly path: string
  readonly headers: Record<string, string>
}

export const FAST_RETRY: RetryPolicy = { retries: 2, baseDelayMs: 10, factor: 2, maxDelayMs: 100 }

function headerRecord(headers: Dispatcher.DispatchOptions['headers']): Record<string, string> {
  const out: Record<string, string> = {}
  if (!headers) return out
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) out[String(headers[i]).toLowerCase()] = String(headers[i + 1])
  } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string]>) out[k.toLowerCase()] = String(v)
  } else {
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k.toLowerCase()] = String(v)
  }
  return out
}

export function recordingDispatcher(log: RecordedRequest[], agentOptions: Agent.Options = {}): Dispatcher {
  return new Agent(agentOptions).compose((dispatch) => (options, handler) => {
    log.push({ method: options.method, origin: String(options.origin), path: options.path, headers: headerRecord(options.headers) })
    return dispatch(options, handler)
  })
}

export type HarnessRequest = Partial<Omit<PromotionRequest, 'source' | 'destinations'>> & { source: string; to?: string[] }

export interface Harness {
  readonly requests: RecordedRequest[]
  readonly transport: Transport
  readonly stores: Stores
  readonly secrets: string[]
  run(request: HarnessRequest): Promise<PromotionResult>
  /** Several images as one release (promoteRelease), each request as run() takes it. */
  release(requests: readonly HarnessRequest[]): Promise<PromotionResult[]>
  writes(): RecordedRequest[]
  close(): Promise<void>
}

export interface HarnessOptions {
  credentials?: DockerCredentialOptions
  retry?: RetryPolicy
  insecure?: string[]
  agent?: Agent.Options
  verifier?: SignatureVerifier
  /** attestation-policy, compiled (verify/cel.ts). */
  rules?: readonly AttestationRule[]
  externalEvidence?: (subject: string) => Promise<EvidenceBatch[]>
  /** Promotion gates and records, passed through as they are. */
  deps?: Pick<PromoteDependencies, 'gate' | 'record' | 'progress'>
}

export function createHarness(options: HarnessOptions = {}): Harness {
  const requests: RecordedRequest[] = []
  const secrets: string[] = []
  const transport = new Transport({ dispatcher: recordingDispatcher(requests, options.agent), retry: options.retry ?? FAST_RETRY })
  const stores = new Stores({
    transport,
    credentials: new DockerCredentials({ configDir: '/nonexistent-oci-promote-test', onSecret: (s) => secrets.push(s), ...options.credentials }),
    insecureRegistries: options.insecure ?? [],
    onSecret: (s) => secrets.push(s)
  })
  return {
    requests,
    transport,
    stores,
    secrets,
    async run(request) {
      return (await this.release([request]))[0]!
    },
    async release(requests) {
      return promoteRelease(
        requests.map((request) => {
          const source = parseReference(request.source)
          const { to = [], ...rest } = request
          return { mode: 'promote' as const, verifyBlobs: false, concurrency: 4, destinations: to.map((d) => parseDestination(d, source)), ...rest, source }
        }),
        storeDependencies(stores, {
          retry: options.retry ?? FAST_RETRY,
          ...(options.verifier ? { verifier: new ImageVerifier(options.verifier, options.rules ?? []) } : {}),
          ...(options.externalEvidence ? { externalEvidence: options.externalEvidence } : {}),
          ...options.deps
        })
      )
    },
    writes() {
      return requests.filter((r) => ['PUT', 'POST', 'PATCH', 'DELETE'].includes(r.method))
    },
    async close() {
      await transport.close()
    }
  }
}
