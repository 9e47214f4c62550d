import pLimit from 'p-limit'
import { copyImageContent, emptyStats, type CopyStats } from './copy.js'
import { PromoteError } from './errors.js'
import { loadImageGraph, platformsOf, resolveImage, verifyBlobs, type ImageGraph } from './image.js'
import type { Manifest } from './oci/manifest.js'
import { formatReference, pinnedReference, repositoryName, type Reference } from './oci/reference.js'
import type { Repository } from './oci/repository.js'
import { DEFAULT_RETRY, type RetryPolicy } from './oci/transport.js'

export type Mode = 'promote' | 'plan' | 'verify'
export type DestinationStatus = 'created' | 'moved' | 'unchanged' | 'planned' | 'verified'

/** Semver-like release tags (`v1.2.3`, `1.2.3-rc.1`): once written, they never move. */
export const DEFAULT_IMMUTABLE_TAGS = /^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/

export interface PromotionRequest {
  readonly source: Reference
  readonly expectedDigest?: string
  readonly destinations: readonly Reference[]
  readonly mode: Mode
  /** Tested against the whole tag. */
  readonly immutableTags?: RegExp
  readonly verifyBlobs: boolean
  readonly concurrency: number
}

export interface DestinationResult {
  readonly reference: string
  readonly digest: string
  readonly previousDigest: string | null
  readonly status: DestinationStatus
  readonly copy: 'none' | 'same-repository' | 'same-registry' | 'cross-registry'
}

export interface PromotionResult {
  readonly mode: Mode
  readonly source: string
  readonly digest: string
  /** `repository@sha256:…` of the source. */
  readonly image: string
  readonly mediaType: string
  readonly platforms: readonly string[]
  readonly destinations: readonly DestinationResult[]
  readonly blobsVerified?: { readonly count: number; readonly bytes: number }
  readonly copied: CopyStats
}

export interface Logger {
  info(message: string): void
  debug(message: string): void
}

export interface PromoteDependencies {
  readonly repository: (ref: Reference) => Repository
  /** Called once with every repository and the access it needs, before any request. */
  readonly declareAccess?: (ref: Reference, action: 'pull' | 'push') => void
  /** Rejects a destination known to be unwritable (where the store can tell), before any write. */
  readonly checkWriteAccess?: (ref: Reference) => Promise<void>
  readonly log?: Logger
  readonly retry?: RetryPolicy
  readonly signal?: AbortSignal
}

interface Destination {
  readonly ref: Reference
  readonly repository: Repository
  /** The tag to write, or undefined to copy by digest only. */
  readonly tag?: string
  readonly copy: DestinationResult['copy']
  previousDigest: string | null
}

const silent: Logger = { info: () => {}, debug: () => {} }

function copyKind(source: Repository, target: Repository): DestinationResult['copy'] {
  if (source.name === target.name && source.store === target.store) return 'same-repository'
  return source.store === target.store ? 'same-registry' : 'cross-registry'
}

/** Duplicate destination lines would race against themselves; keep the first of each. */
function distinct(refs: readonly Reference[]): Reference[] {
  const seen = new Set<string>()
  return refs.filter((ref) => {
    const key = formatReference(ref)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

async function readPrevious(destination: Destination, digest: string): Promise<string | null> {
  if (destination.tag) return (await destination.repository.resolveTag(destination.tag)) ?? null
  return (await destination.repository.hasManifest(digest)) ? digest : null
}

/** Fetches what a destination now holds and hashes it: the registry's word alone is not proof. */
async function readBack(destination: Destination, digest: string): Promise<string | undefined> {
  return (await destination.repository.fetchManifest(destination.tag ?? digest))?.digest
}

function statusOf(previous: string | null, digest: string): DestinationStatus {
  if (previous === digest) return 'unchanged'
  return previous === null ? 'created' : 'moved'
}

/**
 * Resolve, check, copy, tag, read back. Every check (digest, conflicts,
 * immutable tags) finishes before the first write; content lands at every
 * destination before any tag moves, so a failure mid-copy leaves no
 * environment tag pointing at a half-copied image.
 */
export async function promote(request: PromotionRequest, deps: PromoteDependencies): Promise<PromotionResult> {
  const log = deps.log ?? silent
  const limit = pLimit(Math.max(1, request.concurrency))
  const destinationRefs = distinct(request.destinations)

  deps.declareAccess?.(request.source, 'pull')
  for (const ref of destinationRefs) deps.declareAccess?.(ref, request.mode === 'promote' ? 'push' : 'pull')

  const source = deps.repository(request.source)
  const root = await resolveImage(source, request.source, request.expectedDigest)
  const digest = root.digest
  log.info(`${formatReference(request.source)} resolves to ${digest} (${root.mediaType})`)

  const destinations: Destination[] = destinationRefs.map((ref) => {
    const repository = deps.repository(ref)
    return { ref, repository, ...(ref.tag ? { tag: ref.tag } : {}), copy: copyKind(source, repository), previousDigest: null }
  })

  // A retag in the same repository needs only the root; children and blobs are fetched when something moves them.
  const needsGraph = request.verifyBlobs || (request.mode === 'promote' && destinations.some((d) => d.copy !== 'same-repository'))
  const graph: ImageGraph = needsGraph
    ? await loadImageGraph(source, root, limit)
    : { root, children: [], blobs: [], platforms: platformsOf(root) }

  let blobsVerified: PromotionResult['blobsVerified']
  if (request.verifyBlobs) {
    blobsVerified = await verifyBlobs(source, graph, limit)
    log.info(`verified ${blobsVerified.count} blobs (${blobsVerified.bytes} bytes) against their digests`)
  }

  await Promise.all(destinations.map(async (d) => (d.previousDigest = await limit(() => readPrevious(d, digest)))))

  const base = { mode: request.mode, source: formatReference(request.source), digest, image: pinnedReference(request.source, digest), mediaType: root.mediaType, platforms: graph.platforms, ...(blobsVerified ? { blobsVerified } : {}) }

  if (request.mode === 'verify') {
    return { ...base, destinations: await verifyDestinations(destinations, digest, limit), copied: emptyStats() }
  }

  checkImmutableTags(destinations, digest, request.immutableTags)

  const pending = destinations.filter((d) => d.previousDigest !== digest)
  if (request.mode === 'plan') {
    const results = destinations.map((d) => result(d, digest, d.previousDigest === digest ? 'unchanged' : 'planned'))
    return { ...base, destinations: results, copied: emptyStats() }
  }

  await Promise.all(pending.map((d) => deps.checkWriteAccess?.(d.ref)))
  const copied = await writeDestinations(pending, source, graph, root, { limit, retry: deps.retry ?? DEFAULT_RETRY, log, ...(deps.signal ? { signal: deps.signal } : {}) })
  const results = await Promise.all(
    destinations.map((d) =>
      limit(async () => {
        const landed = await readBack(d, digest)
        if (landed !== digest) {
          throw new PromoteError('READBACK_MISMATCH', `after writing, ${formatReference(d.ref)} resolves to ${landed ?? 'nothing'}, not ${digest}; another writer may have moved it, or the registry did not keep the write`)
        }
        return result(d, digest, statusOf(d.previousDigest, digest))
      })
    )
  )
  return { ...base, destinations: results, copied }
}

function result(d: Destination, digest: string, status: DestinationStatus): DestinationResult {
  return { reference: formatReference(d.ref), digest, previousDigest: d.previousDigest, status, copy: d.copy }
}

function checkImmutableTags(destinations: readonly Destination[], digest: string, pattern: RegExp | undefined): void {
  if (!pattern) return
  const conflicts = destinations.filter((d) => d.tag && pattern.test(d.tag) && d.previousDigest !== null && d.previousDigest !== digest)
  if (conflicts.length === 0) return
  const lines = conflicts.map((d) => `${formatReference(d.ref)} already points at ${d.previousDigest}`)
  throw new PromoteError('IMMUTABLE_TAG', `refusing to move immutable tags (pattern ${pattern.source}): ${lines.join('; ')}. Nothing was written. Promote under a new tag, or change immutable-tags if moving it is intended`)
}

async function verifyDestinations(destinations: readonly Destination[], digest: string, limit: ReturnType<typeof pLimit>): Promise<DestinationResult[]> {
  const landed = await Promise.all(destinations.map((d) => limit(() => readBack(d, digest))))
  const missing = destinations.filter((_, i) => landed[i] !== digest)
  if (missing.length > 0) {
    const lines = missing.map((d) => `${formatReference(d.ref)} is ${landed[destinations.indexOf(d)] ?? 'absent'}`)
    throw new PromoteError('NOT_PROMOTED', `not every destination holds ${digest}: ${lines.join('; ')}`)
  }
  return destinations.map((d) => result(d, digest, 'verified'))
}

async function writeDestinations(
  pending: readonly Destination[],
  source: Repository,
  graph: ImageGraph,
  root: Manifest,
  options: { limit: ReturnType<typeof pLimit>; retry: RetryPolicy; signal?: AbortSignal; log: Logger }
): Promise<CopyStats> {
  const total = emptyStats()
  // Content first, once per destination repository, for every destination...
  const byRepository = new Map<string, Destination>()
  for (const d of pending) if (d.copy !== 'same-repository') byRepository.set(`${d.repository.store} ${repositoryName(d.ref)}`, d)
  await Promise.all(
    [...byRepository.values()].map(async (d) => {
      const stats = await copyImageContent(graph, source, d.repository, options)
      options.log.info(`${d.repository.name}: ${stats.blobsUploaded} blobs uploaded (${stats.bytesUploaded} bytes), ${stats.blobsMounted} mounted, ${stats.blobsPresent} already present`)
      for (const key of Object.keys(total) as (keyof CopyStats)[]) total[key] += stats[key]
    })
  )
  // ...then the root manifest under each tag (or its digest), which is when environments see the change.
  await Promise.all(
    pending
      .map((d) =>
        options.limit(async () => {
          await d.repository.putManifest(d.tag ?? root.digest, root)
          total.manifestsWritten++
          options.log.info(`${formatReference(d.ref)} -> ${root.digest}`)
        })
      )
  )
  return total
}
