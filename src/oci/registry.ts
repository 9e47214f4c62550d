import { Readable } from 'node:stream'
import { PromoteError } from '../errors.js'
import { untrusted } from '../untrusted.js'
import { RegistryAuth } from './auth.js'
import type { CredentialSource } from './credentials.js'
import { SHA256_DIGEST } from './digest.js'
import { MAX_MANIFEST_BYTES, indexEntries, toManifest, type Descriptor, type IndexEntries, type Manifest } from './manifest.js'
import { MANIFEST_ACCEPT, OCI_INDEX } from './media-types.js'
import { TAG_PATTERN, isLoopbackHost, registryApiHost } from './reference.js'
import type { Repository } from './repository.js'
import { NO_RETRY, headerValue, nextLink, readLimited, type HttpMethod, type HttpResponse, type Transport } from './transport.js'

const MAX_ERROR_BODY_BYTES = 64 * 1024

interface CallOptions {
  /** The repositories the request touches, so a token split per repository covers them (see RegistryAuth). */
  readonly repositories?: readonly string[]
  readonly headers?: Record<string, string>
  readonly body?: () => Buffer | Readable | Promise<Buffer | Readable>
  readonly retry?: typeof NO_RETRY
}

/**
 * Turns an error response into a PromoteError carrying the OCI error codes the
 * registry sent (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes).
 */
export async function responseError(res: HttpResponse, what: string, hints: { readonly nameUnknown?: string } = {}): Promise<PromoteError> {
  const { said, codes } = await registrySays(res)
  const transient = res.status === 408 || res.status === 429 || res.status >= 500
  // NAME_UNKNOWN on a push: registries such as ECR do not create repositories on first push.
  const hint = hints.nameUnknown && codes.includes('NAME_UNKNOWN') ? `. ${hints.nameUnknown}` : ''
  return new PromoteError('REGISTRY_ERROR', `${what}: ${said}${hint}`, { transient })
}

/** "HTTP 404 (NAME_UNKNOWN: …)": the status and the OCI error codes and messages of a refusal's body, escaped. */
async function registrySays(res: HttpResponse): Promise<{ said: string; codes: unknown[] }> {
  let detail = ''
  let codes: unknown[] = []
  try {
    const body = await readLimited(res, MAX_ERROR_BODY_BYTES, 'error body')
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] }
    const errors = Array.isArray(parsed.errors) ? parsed.errors : []
    codes = errors.map((e) => e?.code)
    detail = errors
      .map((e) => [e?.code, e?.message].filter((part) => typeof part === 'string' && part !== '').join(': '))
      .filter(Boolean)
      .join('; ')
  } catch {
    res.body.destroy()
  }
  return { said: `HTTP ${res.status}${detail ? ` (${untrusted(detail)})` : ''}`, codes }
}

/**
 * A refusal of the request's headers for their size: 431 (RFC 6585), or the HTML 400 page a front end such as
 * nginx sends ("Request Header Or Cookie Too Large"), never a registry's own JSON 400.
 */
function headersTooLarge(res: HttpResponse): boolean {
  return res.status === 431 || (res.status === 400 && (headerValue(res.headers, 'content-type') ?? '').startsWith('text/html'))
}

/** What a run cost one registry: manifest GETs (Docker Hub counts each as a pull) and the rate limit it last reported. */
export interface RegistryUsage {
  readonly registry: string
  readonly pulls: number
  /** The registry's `ratelimit-remaining` header as last sent (Docker Hub: "76;w=21600"), escaped. */
  readonly rateLimitRemaining?: string
}

/** A registry's pulls for the log and summary: "docker.io: 1 manifest pull (rate limit remaining: 76;w=21600)". */
export function usageLine(usage: RegistryUsage): string {
  const remaining = usage.rateLimitRemaining !== undefined ? ` (rate limit remaining: ${usage.rateLimitRemaining})` : ''
  return `${usage.registry}: ${usage.pulls} manifest pull${usage.pulls === 1 ? '' : 's'}${remaining}`
}

export interface RegistryClientOptions {
  readonly registry: string
  readonly transport: Transport
  readonly credentials: CredentialSource
  /** Reached over plain HTTP: loopback always is. */
  readonly insecure?: boolean
  readonly onSecret?: (secret: string) => void
}

/** The Distribution API v2 for one registry: https://github.com/opencontainers/distribution-spec */
export class RegistryClient {
  readonly registry: string
  readonly baseUrl: URL
  readonly auth: RegistryAuth
  readonly #transport: Transport
  #pulls = 0
  #rateLimitRemaining: string | undefined

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry
    const plain = options.insecure === true || isLoopbackHost(options.registry)
    this.baseUrl = new URL(`${plain ? 'http' : 'https'}://${registryApiHost(options.registry)}`)
    this.#transport = options.transport
    this.auth = new RegistryAuth({
      registry: options.registry,
      baseUrl: this.baseUrl,
      credentials: options.credentials,
      transport: options.transport,
      ...(options.onSecret ? { onSecret: options.onSecret } : {})
    })
  }

  repository(name: string): RemoteRepository {
    return new RemoteRepository(this, name)
  }

  /** Notes a manifest response: a GET is a pull; any response may carry the registry's rate-limit headers. */
  noteManifestResponse(method: HttpMethod, res: HttpResponse): void {
    if (method === 'GET') this.#pulls++
    const remaining = headerValue(res.headers, 'ratelimit-remaining')
    if (remaining !== undefined) this.#rateLimitRemaining = untrusted(remaining, 64)
  }

  get usage(): RegistryUsage {
    return { registry: this.registry, pulls: this.#pulls, ...(this.#rateLimitRemaining !== undefined ? { rateLimitRemaining: this.#rateLimitRemaining } : {}) }
  }

  /**
   * One registry call: adds credentials (only for this registry's own origin)
   * and, on a 401, refreshes them once before giving up with a clear refusal.
   * A request refused for the size of its headers is sent once more with a
   * token for its own repositories only.
   */
  async call<T>(what: string, method: HttpMethod, target: string | URL, handle: (res: HttpResponse) => Promise<T>, options: CallOptions = {}): Promise<T> {
    const url = typeof target === 'string' ? new URL(target, this.baseUrl) : target
    let refreshed = false
    for (;;) {
      let sentBearer = false
      const outcome = await this.#transport.exchange(
        async () => {
          const headers: Record<string, string> = { ...options.headers }
          if (url.origin === this.baseUrl.origin) {
            const authorization = await this.auth.authorization(options.repositories)
            if (authorization) headers['authorization'] = authorization
            sentBearer = authorization?.startsWith('Bearer ') === true
          }
          return { method, url, headers, body: options.body ? await options.body() : null }
        },
        async (res): Promise<{ refused: HttpResponse; said: string } | { value: T }> => {
          if (headersTooLarge(res)) {
            await res.body.dump()
            return { refused: res, said: `HTTP ${res.status}` }
          }
          if (res.status === 401 || res.status === 403) return { refused: res, said: (await registrySays(res)).said }
          return { value: await handle(res) }
        },
        options.retry ? { retry: options.retry } : {}
      )
      if ('value' in outcome) return outcome.value
      const refusal = outcome.refused
      if (headersTooLarge(refusal)) {
        if (this.auth.headersRefused(sentBearer)) continue
        throw new PromoteError('REGISTRY_ERROR', `${what}: ${this.registry} refused the request's headers as too large (HTTP ${refusal.status})`)
      }
      if (refusal.status === 401 && !refreshed && (await this.auth.refresh(refusal))) {
        refreshed = true
        continue
      }
      throw await this.auth.describeRefusal(refusal.status, what, outcome.said)
    }
  }
}

const TAGS_PAGE_SIZE = 1000
const MAX_TAG_PAGES = 1000

// A registry that refuses a PUT for its size without naming a limit gets chunks from here, halving down to the floor.
const FALLBACK_CHUNK_BYTES = 8 * 1024 * 1024
const MIN_CHUNK_BYTES = 64 * 1024
const SEND_BATCH_BYTES = 256 * 1024
// A chunk whose request broke is resent from the registry's Range this many times in one upload.
const MAX_CHUNK_RESUMES = 3

function positiveInteger(value: string | undefined): number | undefined {
  const n = Number(value)
  return value !== undefined && Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/**
 * The chunk size to use: the registry's maximum (chunks stream, so memory sets no bound), never below its minimum,
 * nor below MIN_CHUNK_BYTES: a registry announcing a 1-byte maximum would otherwise cost a request per byte. One that
 * truly takes less refuses the chunk with 413, and the upload fails saying so.
 */
function chunkSize(max: number, min: number | undefined): number {
  return Math.max(max, min ?? 1, MIN_CHUNK_BYTES)
}

/**
 * A stream's chunks one at a time, as they were pushed. (Its async iterator reads whatever is buffered at once,
 * joining several chunks into a copy: a cost per byte a pass-through does not need.)
 */
function pushedChunks(stream: Readable): () => Promise<Buffer | undefined> {
  const queue: Buffer[] = []
  let done = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const settle = (): void => {
    done = true
    wake?.()
  }
  stream.on('data', (data: Buffer) => {
    queue.push(data)
    stream.pause()
    wake?.()
  })
  stream.once('end', settle)
  stream.once('close', settle)
  stream.once('error', (error: Error) => {
    failure = error
    settle()
  })
  stream.pause()
  return async () => {
    while (queue.length === 0 && !done) {
      await new Promise<void>((resolve) => {
        wake = resolve
        stream.resume()
      })
      wake = undefined
    }
    const data = queue.shift()
    if (data === undefined && failure !== undefined) throw failure
    return data
  }
}

/**
 * The source of a chunked upload: each chunk's request body passes the source's bytes straight on as they arrive
 * (reading overlaps sending, and nothing is held but what is in flight, exactly as in a single PUT). A chunk that
 * must go again (refused for its size, or its request broke) is read again: the source is opened anew and read up
 * to where the upload stands, so the registry's upload resumes from its Range and memory holds no copy of a chunk.
 * (Holding each chunk in memory for that cost 16 MiB per blob in flight and made every chunk wait to be read
 * whole before it was sent.)
 */
class ChunkSource {
  #stream: Readable | undefined
  #next: (() => Promise<Buffer | undefined>) | undefined
  #leftover: Buffer | undefined
  #position = 0
  #ended = false
  // The source broke (a connection cut): the next chunk opens it anew rather than read a dead stream.
  #failed = false
  // A request abandoned mid-body may still be reading when the next one starts: reads are serialised, and a read
  // of an earlier request stops once another has begun.
  #turn = 0
  #reading: Promise<unknown> = Promise.resolve()

  constructor(
    readonly open: () => Promise<Readable>,
    readonly what: string
  ) {}

  /** The body of the chunk of `length` bytes from `offset`: the source read (again, if need be) up to there, then passed on. */
  async chunk(offset: number, length: number): Promise<Readable> {
    const turn = ++this.#turn
    await this.#serialised(async () => {
      if (this.#position > offset || this.#next === undefined || this.#failed) await this.#reopen()
      while (this.#position < offset) if ((await this.#read(offset - this.#position)) === undefined) break
    })
    return Readable.from(this.#take(turn, offset + length), { objectMode: false })
  }

  /** Bytes up to `until`, as they arrive; stops when a later chunk has begun or the source ended. */
  async *#take(turn: number, until: number): AsyncGenerator<Buffer> {
    const current = (): boolean => turn === this.#turn && this.#position < until
    while (current()) {
      // A few hundred KiB a turn rather than each small read on its own: far less bookkeeping per byte.
      const batch = await this.#serialised(async () => {
        const parts: Buffer[] = []
        for (let bytes = 0; bytes < SEND_BATCH_BYTES && current();) {
          const data = await this.#read(until - this.#position)
          if (data === undefined) break
          parts.push(data)
          bytes += data.length
        }
        return parts
      })
      if (batch.length === 0) return
      yield* batch
    }
  }

  /** A source that ended before `size` bytes broke its descriptor (and broke the request that carried them). */
  shortOf(size: number): PromoteError | undefined {
    return this.#ended && this.#position < size
      ? new PromoteError('BLOB_MISMATCH', `${this.what}: the source sent ${this.#position} bytes, not the ${size} its descriptor says`)
      : undefined
  }

  /** After the last chunk: the source must end here (and a verifying stream gets to check its digest). */
  async end(): Promise<void> {
    ++this.#turn
    const more = await this.#serialised(async () => this.#leftover !== undefined || (this.#next !== undefined && (await this.#next()) !== undefined))
    if (more) throw new PromoteError('BLOB_MISMATCH', `${this.what}: the source sent more bytes than its descriptor says`)
  }

  /** Lets the source go (a stream not read to its end holds its connection). */
  close(): void {
    ++this.#turn
    this.#stream?.destroy()
  }

  #serialised<T>(read: () => Promise<T>): Promise<T> {
    const next = this.#reading.then(read)
    this.#reading = next.catch(() => undefined)
    return next
  }

  async #reopen(): Promise<void> {
    this.#stream?.destroy()
    this.#stream = await this.open()
    this.#next = pushedChunks(this.#stream)
    this.#leftover = undefined
    this.#position = 0
    this.#ended = false
    this.#failed = false
  }

  /** At most `max` bytes from the source, or undefined at its end. */
  async #read(max: number): Promise<Buffer | undefined> {
    let data = this.#leftover
    this.#leftover = undefined
    if (data === undefined) {
      data = await this.#next!().catch((error: unknown) => {
        this.#failed = true
        throw error
      })
      if (data === undefined) {
        this.#ended = true
        return undefined
      }
    }
    if (data.length > max) {
      this.#leftover = data.subarray(max)
      data = data.subarray(0, max)
    }
    this.#position += data.length
    return data
  }
}

function checkDigestArgument(digest: string): string {
  if (!SHA256_DIGEST.test(digest)) throw new PromoteError('DIGEST_MISMATCH', `"${digest}" is not a sha256 digest`)
  return digest
}

/** An upload the registry opened (POST answered 202): where it goes on, and the chunk sizes it announced. */
interface OpenedUpload {
  readonly mounted: false
  readonly location: URL
  readonly chunkMax?: number
  readonly chunkMin?: number
}

export class RemoteRepository implements Repository {
  readonly name: string
  readonly store: string
  readonly #uploadsOpenedByMount = new Map<string, OpenedUpload>()

  constructor(
    readonly client: RegistryClient,
    readonly repository: string
  ) {
    this.name = `${client.registry}/${repository}`
    this.store = `registry:${client.registry}`
  }

  /** A call touching this repository (and, for a mount, the one mounted from). */
  #call<T>(what: string, method: HttpMethod, target: string | URL, handle: (res: HttpResponse) => Promise<T>, options: CallOptions = {}): Promise<T> {
    return this.client.call(what, method, target, handle, { repositories: [this.repository], ...options })
  }

  #path(kind: 'manifests' | 'blobs', reference: string): string {
    return `/v2/${this.repository}/${kind}/${reference}`
  }

  async fetchManifest(reference: string, options: { readonly probe?: boolean } = {}): Promise<Manifest | undefined> {
    if (options.probe && !(await this.#manifestExists(reference))) return undefined
    const what = `GET manifest ${this.name}:${reference}`
    return this.#call(
      what,
      'GET',
      this.#path('manifests', reference),
      async (res) => {
        this.client.noteManifestResponse('GET', res)
        if (res.status === 404) {
          await res.body.dump()
          return undefined
        }
        if (res.status !== 200) throw await responseError(res, what)
        const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `manifest ${this.name}:${reference}`)
        const manifest = toManifest(bytes, headerValue(res.headers, 'content-type'), `manifest ${this.name}:${reference}`)
        const claimed = headerValue(res.headers, 'docker-content-digest')
        if (claimed && claimed !== manifest.digest) {
          throw new PromoteError(
            'DIGEST_MISMATCH',
            `${this.client.registry} claims ${this.name}:${reference} is ${untrusted(claimed)}, but the bytes it sent hash to ${manifest.digest}; refusing a registry that misreports digests`
          )
        }
        if (SHA256_DIGEST.test(reference) && reference !== manifest.digest) {
          throw new PromoteError(
            'DIGEST_MISMATCH',
            `${this.client.registry} answered a request for ${this.name}@${reference} with bytes that hash to ${manifest.digest}`
          )
        }
        return manifest
      },
      { headers: { accept: MANIFEST_ACCEPT } }
    )
  }

  /** HEAD of a manifest: null when absent, else the digest the registry claims for it ('' when it claims none). */
  async #head(reference: string): Promise<string | null> {
    const what = `HEAD manifest ${this.name}${SHA256_DIGEST.test(reference) ? '@' : ':'}${reference}`
    return this.#call(
      what,
      'HEAD',
      this.#path('manifests', reference),
      async (res) => {
        this.client.noteManifestResponse('HEAD', res)
        await res.body.dump()
        if (res.status === 404) return null
        if (res.status !== 200) throw await responseError(res, what)
        return headerValue(res.headers, 'docker-content-digest') ?? ''
      },
      { headers: { accept: MANIFEST_ACCEPT } }
    )
  }

  async #manifestExists(reference: string): Promise<boolean> {
    return (await this.#head(reference)) !== null
  }

  async resolveTag(tag: string): Promise<string | undefined> {
    const claimed = await this.#head(tag)
    if (claimed === null) return undefined
    if (SHA256_DIGEST.test(claimed)) return claimed
    // No usable digest header: hash the manifest instead of guessing.
    return (await this.fetchManifest(tag))?.digest
  }

  async hasManifest(digest: string): Promise<boolean> {
    return this.#manifestExists(checkDigestArgument(digest))
  }

  async putManifest(reference: string, manifest: Manifest): Promise<string | undefined> {
    const what = `PUT manifest ${this.name}:${reference}`
    return this.#call(
      what,
      'PUT',
      this.#path('manifests', reference),
      async (res) => {
        if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await responseError(res, what)
        await res.body.dump()
        const stored = headerValue(res.headers, 'docker-content-digest')
        if (stored && stored !== manifest.digest) {
          throw new PromoteError(
            'DIGEST_MISMATCH',
            `${this.client.registry} stored ${this.name}:${reference} as ${stored}, not ${manifest.digest}: it altered the manifest`
          )
        }
        return headerValue(res.headers, 'oci-subject')
      },
      {
        headers: { 'content-type': manifest.mediaType, 'content-length': String(manifest.bytes.length) },
        body: () => manifest.bytes
      }
    )
  }

  async deleteTag(tag: string): Promise<void> {
    const what = `DELETE tag ${this.name}:${tag}`
    await this.#call(what, 'DELETE', this.#path('manifests', tag), async (res) => {
      // Distribution 2.8 and others delete manifests by digest only; say so rather than fake it.
      if (res.status === 405 || res.status === 400 || res.status === 404) {
        throw new PromoteError('REGISTRY_ERROR', `${this.client.registry} does not delete tags (${(await registrySays(res)).said})`)
      }
      if (res.status !== 202 && res.status !== 200) throw await responseError(res, what)
      await res.body.dump()
    })
  }

  /** Every tag, following the registry's `Link` to the next page (distribution-spec, "Listing Tags"), on its own origin only. */
  async listTags(): Promise<string[]> {
    const tags: string[] = []
    let next: URL | undefined = new URL(`/v2/${this.repository}/tags/list?n=${TAGS_PAGE_SIZE}`, this.client.baseUrl)
    for (let page = 1; next; page++) {
      const what = `GET tags ${this.name} (page ${page})`
      if (page > MAX_TAG_PAGES) throw new PromoteError('REGISTRY_ERROR', `${what}: more than ${MAX_TAG_PAGES} pages of tags; refusing to read on`)
      if (next.origin !== this.client.baseUrl.origin) {
        throw new PromoteError('REGISTRY_ERROR', `${what}: the next page is on another origin (${untrusted(next.origin)}); refused`)
      }
      next = await this.#call(what, 'GET', next, async (res) => {
        if (res.status !== 200)
          throw await responseError(res, what, { nameUnknown: `The repository ${this.repository} does not exist in ${this.client.registry}` })
        const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `tags of ${this.name}`)
        let listed: unknown
        try {
          listed = (JSON.parse(bytes.toString('utf8')) as { tags?: unknown }).tags
        } catch (error) {
          throw new PromoteError('REGISTRY_ERROR', `${what}: the answer is not JSON`, { cause: error })
        }
        // A registry answers null for a repository without tags; anything that is not a valid tag is not one.
        if (Array.isArray(listed)) for (const tag of listed) if (typeof tag === 'string' && TAG_PATTERN.test(tag)) tags.push(tag)
        const link = nextLink(headerValue(res.headers, 'link'))
        return link ? new URL(link, this.client.baseUrl) : undefined
      })
    }
    return [...new Set(tags)]
  }

  async deleteManifest(digest: string): Promise<void> {
    const what = `DELETE manifest ${this.name}@${digest}`
    await this.#call(what, 'DELETE', this.#path('manifests', checkDigestArgument(digest)), async (res) => {
      if (res.status === 202 || res.status === 200 || res.status === 204 || res.status === 404) return void (await res.body.dump())
      const { said, codes } = await registrySays(res)
      if (res.status === 405 || codes.includes('UNSUPPORTED')) {
        throw new PromoteError('DELETION_REFUSED', `${what}: ${this.client.registry} does not allow deleting manifests (${said})`)
      }
      throw new PromoteError('REGISTRY_ERROR', `${what}: ${said}`, { transient: res.status >= 500 || res.status === 429 })
    })
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const what = `HEAD blob ${this.name}@${descriptor.digest}`
    return this.#call(what, 'HEAD', this.#path('blobs', checkDigestArgument(descriptor.digest)), async (res) => {
      await res.body.dump()
      if (res.status === 404) return false
      if (res.status !== 200) throw await responseError(res, what)
      return true
    })
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    const what = `GET blob ${this.name}@${descriptor.digest}`
    return this.#call(what, 'GET', this.#path('blobs', checkDigestArgument(descriptor.digest)), async (res) => {
      if (res.status === 404) {
        await res.body.dump()
        throw new PromoteError('BLOB_UNKNOWN', `${this.name} does not have blob ${descriptor.digest} that its manifest references`)
      }
      if (res.status !== 200) throw await responseError(res, what)
      return res.body
    })
  }

  async referrersFromApi(digest: string): Promise<IndexEntries | undefined> {
    const what = `GET referrers ${this.name}@${digest}`
    return this.#call(
      what,
      'GET',
      `/v2/${this.repository}/referrers/${checkDigestArgument(digest)}`,
      async (res) => {
        // 404 is how a registry without the API answers; so do some that have it but know nothing of the digest,
        // and both mean the same to a reader: look at the fallback tag.
        if (res.status === 404) {
          await res.body.dump()
          return undefined
        }
        if (res.status !== 200) throw await responseError(res, what)
        const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `referrers of ${this.name}@${digest}`)
        return indexEntries(bytes, `referrers of ${this.name}@${digest}`)
      },
      { headers: { accept: OCI_INDEX } }
    )
  }

  async #startUpload(query: string, repositories: readonly string[] = [this.repository]): Promise<{ mounted: true } | OpenedUpload> {
    const what = `POST blob upload ${this.name}`
    return this.#call(
      what,
      'POST',
      `/v2/${this.repository}/blobs/uploads/${query}`,
      async (res) => {
        const location = headerValue(res.headers, 'location')
        // The registry's own words are in the body of a refusal: read them before anything discards it.
        if (res.status !== 201 && (res.status !== 202 || !location)) {
          throw await responseError(res, what, {
            nameUnknown: `The repository ${this.repository} does not exist in ${this.client.registry}: create it first (registries such as Amazon ECR do not create repositories on push)`
          })
        }
        await res.body.dump()
        if (res.status === 201) return { mounted: true as const }
        // A registry that caps request bodies says so (distribution-spec: pushing a blob in chunks).
        const chunkMax = positiveInteger(headerValue(res.headers, 'oci-chunk-max-length'))
        const chunkMin = positiveInteger(headerValue(res.headers, 'oci-chunk-min-length'))
        return {
          mounted: false as const,
          location: new URL(location!, this.client.baseUrl),
          ...(chunkMax ? { chunkMax } : {}),
          ...(chunkMin ? { chunkMin } : {})
        }
      },
      { repositories, headers: { 'content-length': '0' } }
    )
  }

  async mountBlob(descriptor: Descriptor, from: Repository): Promise<boolean> {
    if (!(from instanceof RemoteRepository) || from.store !== this.store) return false
    const query = `?mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(from.repository)}`
    // Mounting is only an optimisation: any failure falls back to a plain upload.
    const started = await this.#startUpload(query, [this.repository, from.repository]).catch(() => undefined)
    // A registry that does not mount (across projects in Harbor, go-containerregistry#1393) answers with an upload
    // instead, as the distribution spec allows: the blob's upload goes on there rather than leaving it open.
    if (started && !started.mounted) this.#uploadsOpenedByMount.set(descriptor.digest, started)
    return started?.mounted === true
  }

  /**
   * One attempt; the caller retries the whole blob, since a stream cannot be replayed. One PUT, unless the
   * registry caps request bodies: it announced OCI-Chunk-Max-Length below the blob's size, or it refused the
   * PUT with 413. Then the blob goes in chunks (POST, PATCH with Content-Range, PUT), as the distribution spec
   * describes and Cloudflare's serverless registry and ghcr.io's PATCH limit need.
   */
  async writeBlob(descriptor: Descriptor, open: () => Promise<Readable>): Promise<void> {
    const opened = this.#uploadsOpenedByMount.get(descriptor.digest)
    this.#uploadsOpenedByMount.delete(descriptor.digest)
    const started = opened ?? (await this.#startUpload(''))
    if (started.mounted) return
    if (started.chunkMax !== undefined && descriptor.size > started.chunkMax) {
      return this.#writeChunked(descriptor, open, started.location, chunkSize(started.chunkMax, started.chunkMin))
    }
    const url = new URL(started.location)
    url.searchParams.set('digest', descriptor.digest)
    const what = `PUT blob ${this.name}@${descriptor.digest}`
    const tooLarge = await this.#call(
      what,
      'PUT',
      url,
      async (res) => {
        if (res.status === 413) return (await registrySays(res)).said
        if (res.status !== 201 && res.status !== 204 && res.status !== 200) throw await responseError(res, what)
        await res.body.dump()
        return undefined
      },
      {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(descriptor.size) },
        body: open,
        retry: NO_RETRY
      }
    )
    if (tooLarge === undefined) return
    // Refused for its size without saying the limit: a new upload, in chunks that halve until one is taken.
    const again = await this.#startUpload('')
    if (again.mounted) return
    await this.#writeChunked(descriptor, open, again.location, chunkSize(again.chunkMax ?? FALLBACK_CHUNK_BYTES, again.chunkMin), `${what}: ${tooLarge}`)
  }

  /**
   * Sends the blob in chunks of at most `size` bytes, each streamed from the source as it arrives. A chunk refused
   * with 413 is split in half (not below the registry's minimum); a chunk whose request broke is sent again from
   * where the registry's Range header says the upload stands, never blindly from the start.
   */
  async #writeChunked(descriptor: Descriptor, open: () => Promise<Readable>, start: URL, size: number, refused?: string): Promise<void> {
    let location = start
    let offset = 0
    let chunkBytes = size
    let broken = 0
    const what = `PATCH blob ${this.name}@${descriptor.digest}`
    const source = new ChunkSource(open, what)
    try {
      while (offset < descriptor.size) {
        const from = offset
        const length = Math.min(chunkBytes, descriptor.size - from)
        const outcome = await this.#patch(location, () => source.chunk(from, length), length, from, what).catch(async (error: unknown) => {
          const short = source.shortOf(descriptor.size)
          if (short) throw short
          // The request broke: ask where the upload stands, and go on from there (a few times, then the whole blob is retried).
          const stands = ++broken <= MAX_CHUNK_RESUMES ? await this.#uploadStatus(location, what).catch(() => undefined) : undefined
          if (stands === undefined || stands.offset < from || stands.offset > from + length) throw error
          return { location: stands.location, accepted: stands.offset - from }
        })
        if (outcome === 'too-large') {
          if (chunkBytes <= MIN_CHUNK_BYTES)
            throw new PromoteError('REGISTRY_ERROR', `${what}: the registry refuses even ${chunkBytes}-byte chunks (HTTP 413)${refused ? `; ${refused}` : ''}`)
          chunkBytes = Math.max(MIN_CHUNK_BYTES, Math.floor(chunkBytes / 2))
          continue
        }
        location = outcome.location
        offset += outcome.accepted
      }
      await source.end()
    } finally {
      source.close()
    }
    const url = new URL(location)
    url.searchParams.set('digest', descriptor.digest)
    const done = `PUT blob ${this.name}@${descriptor.digest} (last of its chunks)`
    await this.#call(
      done,
      'PUT',
      url,
      async (res) => {
        if (res.status !== 201 && res.status !== 204 && res.status !== 200) throw await responseError(res, done)
        await res.body.dump()
      },
      { headers: { 'content-type': 'application/octet-stream', 'content-length': '0' } }
    )
  }

  async #patch(
    location: URL,
    body: () => Promise<Readable>,
    length: number,
    offset: number,
    what: string
  ): Promise<'too-large' | { location: URL; accepted: number }> {
    return this.#call(
      what,
      'PATCH',
      location,
      async (res) => {
        if (res.status === 413) {
          await res.body.dump()
          return 'too-large' as const
        }
        if (res.status !== 202 && res.status !== 204) throw await responseError(res, what)
        await res.body.dump()
        const next = headerValue(res.headers, 'location')
        return { location: next ? new URL(next, this.client.baseUrl) : location, accepted: length }
      },
      {
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(length),
          'content-range': `${offset}-${offset + length - 1}`
        },
        body,
        retry: NO_RETRY
      }
    )
  }

  /** Where an upload stands: the end of its `Range: 0-N` plus one, and the location to go on with (GET on the upload). */
  async #uploadStatus(location: URL, what: string): Promise<{ offset: number; location: URL }> {
    return this.#call(`${what} (upload status)`, 'GET', location, async (res) => {
      await res.body.dump()
      if (res.status !== 204 && res.status !== 200) throw new PromoteError('REGISTRY_ERROR', `${what}: upload status answered HTTP ${res.status}`)
      const range = /^(?:bytes=)?0-(\d+)$/.exec(headerValue(res.headers, 'range') ?? '')
      const next = headerValue(res.headers, 'location')
      return { offset: range ? Number(range[1]) + 1 : 0, location: next ? new URL(next, this.client.baseUrl) : location }
    })
  }
}
