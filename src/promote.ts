import pLimit from 'p-limit'
import { copyAttachments } from './carry.js'
import { findAttachments, type AttachmentListing } from './oci/attachments.js'
import { copyImageContent, emptyStats, type CopyProgress, type CopyStats } from './copy.js'
import { PromoteError, errorCode, errorMessage, failureMessage } from './errors.js'
import { checkPromotionGate } from './gates.js'
import { historyTag } from './history-tags.js'
import { loadImageGraph, platformsOf, resolveImage, verifyBlobs, type ImageGraph } from './image.js'
import { parseManifest, type Manifest } from './oci/manifest.js'
import { formatReference, pinnedReference, repositoryName, type Reference } from './oci/reference.js'
import type { Repository } from './oci/repository.js'
import { DEFAULT_RETRY, type RetryPolicy } from './oci/transport.js'
import {
  PROMOTION_PREDICATE_TYPE,
  attachBundle,
  promotionStatement,
  verificationSummary,
  type PromotionRecord,
  type RecordSigner,
  type WorkflowRun
} from './records.js'
// Type-only: the verifier is loaded on demand, so runs without a signature policy never load Sigstore.
import type { EvidenceBatch, ImageVerifier, VerifiedSignature } from './verify/index.js'

export type Mode = 'promote' | 'plan' | 'verify' | 'stage'
export type DestinationStatus = 'created' | 'moved' | 'unchanged' | 'planned' | 'verified' | 'staged'

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
  /** Carry signatures, attestations and other referrers to other repositories (default true). */
  readonly copySignatures?: boolean
  /** Before moving a tag, keep a tag naming where it pointed (`<tag>--<digest prefix>`), never moved. */
  readonly historyTags?: boolean
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
  /** Signatures and attestations that satisfied the policy, at the source. */
  readonly verified: readonly VerifiedSignature[]
  /** Signatures, attestations and other referrers carried to other repositories. */
  readonly attachmentsCopied: number
  /** Oddities met on the way (a fallback tag that is not an index, …). */
  readonly notes: readonly string[]
  /** The verified promotion record that opened a require-environment gate. */
  readonly gate?: PromotionRecord
  /** Where this run's own promotion record was attached (`repository@digest`). */
  readonly records: readonly string[]
}

export interface Logger {
  info(message: string): void
  /** Absent when debug output is off: a request's line is then never even formatted (hundreds in a release). */
  readonly debug?: (message: string) => void
}

export interface PromoteDependencies {
  readonly repository: (ref: Reference) => Repository
  /** Called once with every repository and the access it needs, before any request. */
  readonly declareAccess?: (ref: Reference, action: 'pull' | 'push') => void
  /** Told after each blob of the image's content lands at a destination (a terminal's progress line). */
  readonly progress?: (progress: CopyProgress) => void
  /** Rejects a destination known to be unwritable (where the store can tell), before any write. */
  readonly checkWriteAccess?: (ref: Reference) => Promise<void>
  readonly log?: Logger
  readonly retry?: RetryPolicy
  readonly signal?: AbortSignal
  /** When set, the source must carry a signature satisfying its policy, checked before any write. */
  readonly verifier?: ImageVerifier
  /** Evidence kept outside registries (GitHub artifact attestations), per digest. */
  readonly externalEvidence?: (subject: string) => Promise<EvidenceBatch[]>
  /** require-environment: a verified promotion record for this environment must be on the source digest. */
  readonly gate?: { readonly environment: string; readonly verifier: ImageVerifier }
  /** attest-promotion: sign a promotion record and attach it at every destination repository, before tags move. */
  readonly record?: {
    readonly environment: string
    readonly signer: RecordSigner
    readonly run: WorkflowRun
    readonly now?: () => Date
    readonly action?: 'promote' | 'rollback'
    /** Rollback: per destination reference, the promotion the restored digest first came with (RecordedDestination.restores). */
    readonly restores?: Readonly<Record<string, string>>
  }
}

interface Destination {
  readonly ref: Reference
  readonly repository: Repository
  /** The manifest this destination is to hold (its image's root). */
  readonly root: Manifest
  /** The tag to write, or undefined to copy by digest only. */
  readonly tag?: string
  readonly copy: DestinationResult['copy']
  /** What the destination held before this run, read and hashed by its check; undefined when it held nothing. */
  previous?: Manifest | undefined
  /** `previous`'s digest, or null. */
  readonly previousDigest: string | null
}

const silent: Logger = { info: () => {} }

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

/**
 * What a destination holds now, fetched and hashed: GET, not HEAD, because the
 * answer is recorded (previousDigest, promotion records, rollback) and decides
 * that nothing needs writing, and a registry's Docker-Content-Digest is only a
 * claim. A small manifest costs a HEAD's round trip, and an unchanged
 * destination needs no read-back afterwards.
 */
async function readPrevious(destination: Destination, digest: string): Promise<void> {
  destination.previous = await destination.repository.fetchManifest(destination.tag ?? digest)
}

/** Fetches what a destination now holds and hashes it: the registry's word alone is not proof. */
async function readBack(destination: Destination, digest: string): Promise<string | undefined> {
  return (await destination.repository.fetchManifest(destination.tag ?? digest))?.digest
}

function statusOf(previous: string | null, digest: string): DestinationStatus {
  if (previous === digest) return 'unchanged'
  return previous === null ? 'created' : 'moved'
}

/** An image's checks done, nothing written: what its writes and its result need. */
interface Prepared {
  readonly request: PromotionRequest
  readonly source: Repository
  readonly root: Manifest
  readonly graph: ImageGraph
  readonly listing: AttachmentListing
  readonly destinations: Destination[]
  readonly pending: Destination[]
  readonly carried: Destination[]
  readonly copySignatures: boolean
  readonly signedSubjects: readonly string[]
  readonly verified: VerifiedSignature[]
  readonly gate?: PromotionRecord
  readonly base: Omit<PromotionResult, 'destinations' | 'copied' | 'attachmentsCopied'> & { notes: string[]; records: string[] }
}

/**
 * Resolve, check, copy, tag, read back. Every check (digest, conflicts,
 * immutable tags) finishes before the first write; content lands at every
 * destination before any tag moves, so a failure mid-copy leaves no
 * environment tag pointing at a half-copied image.
 */
export async function promote(request: PromotionRequest, deps: PromoteDependencies): Promise<PromotionResult> {
  return (await promoteRelease([request], deps))[0]!
}

/**
 * A release: several images promoted as one unit, all or nothing. Every check of every image runs before the
 * first write anywhere; then content and carried signatures of every image; then tags, those that never move first
 * and floating ones last. A failed tag write puts back every tag this run moved, across all images. The images
 * share one concurrency limit, the stores' clients and tokens, and each blob's upload: a blob several images
 * share is sent once per destination registry and mounted from there into the other repositories.
 */
export async function promoteRelease(requests: readonly PromotionRequest[], deps: PromoteDependencies): Promise<PromotionResult[]> {
  const log = deps.log ?? silent
  const limit = pLimit(Math.max(1, Math.max(...requests.map((r) => r.concurrency))))
  for (const request of requests) {
    deps.declareAccess?.(request.source, 'pull')
    for (const ref of distinct(request.destinations)) deps.declareAccess?.(ref, writes(request.mode) ? 'push' : 'pull')
  }
  const prepared = await everyCheck(
    requests.map((request) => prepare(request, deps, limit, log)),
    (i) => formatReference(requests[i]!.source)
  )
  const mode = requests[0]?.mode ?? 'promote'
  if (mode === 'verify') {
    return prepared.map((p) => ({ ...p.base, destinations: verifyDestinations(p.destinations, p.root.digest), copied: emptyStats(), attachmentsCopied: 0 }))
  }
  for (const p of prepared) checkImmutableTags(p.destinations, p.root.digest, p.request.immutableTags)
  if (mode === 'plan') {
    return prepared.map((p) => ({
      ...p.base,
      destinations: p.destinations.map((d) => result(d, p.root.digest, d.previousDigest === p.root.digest ? 'unchanged' : 'planned')),
      copied: emptyStats(),
      attachmentsCopied: 0
    }))
  }

  const checkWriteAccess = deps.checkWriteAccess
  if (checkWriteAccess) await Promise.all(prepared.flatMap((p) => p.pending).map((d) => checkWriteAccess(d.ref)))
  const options = { limit, retry: deps.retry ?? DEFAULT_RETRY, log, ...(deps.signal ? { signal: deps.signal } : {}) }
  const contentOptions = { ...options, ...(deps.progress ? { progress: deps.progress } : {}) }
  // Where each blob went in each destination registry, for the whole release: sent once, mounted elsewhere.
  const blobHomes = new Map<string, Map<string, Promise<Repository>>>()
  const written = await Promise.all(
    prepared.map(async (p) => {
      const copied = await copyContent(mode === 'stage' ? p.carried : p.pending, p.source, p.graph, { ...contentOptions, landed: blobHomes })
      // Staged: the root too, by digest, so the final promotion finds everything in place and only writes tags.
      if (mode === 'stage') await Promise.all(distinctRepositories(p.carried).map((d) => limit(() => putRootByDigest(d, copied))))
      return { copied, attachmentsCopied: await carrySignatures(p, deps, options) }
    })
  )
  if (mode === 'stage') {
    return prepared.map((p, i) => ({
      ...p.base,
      destinations: p.destinations.map((d) => result(d, p.root.digest, d.previousDigest === p.root.digest ? 'unchanged' : 'staged')),
      ...written[i]!
    }))
  }
  for (const p of prepared) await attachRecord(p, deps, log)
  const pending = prepared.flatMap((p) => p.pending)
  await keepHistory(
    prepared.flatMap((p) => (p.request.historyTags ? p.pending : [])),
    options
  )
  await moveTags(
    prepared.flatMap((p, i) => p.pending.map((d) => ({ d, stats: written[i]!.copied, immutableTags: p.request.immutableTags }))),
    options
  )
  // Read back what this run wrote; a destination that already held the digest was read and hashed by its check.
  const landed = await Promise.all(
    prepared.map((p) =>
      Promise.allSettled(
        p.destinations.map((d) => (p.pending.includes(d) ? limit(() => readBack(d, p.root.digest)) : Promise.resolve(d.previousDigest ?? undefined)))
      )
    )
  )
  const unreadable = prepared.flatMap((p, i) =>
    landed[i]!.flatMap((o, j) => (o.status === 'rejected' ? [{ d: p.destinations[j]!, reason: o.reason as unknown }] : []))
  )
  if (unreadable.length > 0) {
    // Unconfirmed is not promoted: put the environments back, every image's, rather than leave them half-known.
    throw failedAfterWriting(
      `could not read back ${unreadable.map((u) => formatReference(u.d.ref)).join(', ')} after writing`,
      unreadable[0]!.reason,
      await restoreMovedTags(pending)
    )
  }
  return prepared.map((p, i) => ({ ...p.base, destinations: confirmed(p, landed[i]!), ...written[i]! }))
}

/** At most this many failed images are named in one error; the rest are counted. */
const MAX_NAMED_FAILURES = 10

/**
 * Waits for every image's checks, then fails with each image that failed them: a release of twenty with three bad
 * images says so in one run, not in three. One image's error passes through as it is. Nothing is written before.
 */
export async function everyCheck<T>(checks: readonly Promise<T>[], name: (index: number) => string): Promise<T[]> {
  const settled = await Promise.allSettled(checks)
  const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ i, reason: s.reason as unknown }] : []))
  if (failed.length === 0) return settled.map((s) => (s as PromiseFulfilledResult<T>).value)
  const first = failed[0]!.reason
  if (settled.length === 1) throw first
  const named = failed.slice(0, MAX_NAMED_FAILURES).map((f) => `${name(f.i)}: ${failureMessage(f.reason)}`)
  const more = failed.length > MAX_NAMED_FAILURES ? `; and ${failed.length - MAX_NAMED_FAILURES} more` : ''
  throw new PromoteError(
    errorCode(first),
    `${failed.length} of ${settled.length} images failed their checks, so nothing was written: ${named.join('; ')}${more}`,
    { cause: first }
  )
}

async function putRootByDigest(d: Destination, stats: CopyStats): Promise<void> {
  if (await d.repository.hasManifest(d.root.digest)) return
  await d.repository.putManifest(d.root.digest, d.root)
  stats.manifestsWritten++
}

function writes(mode: Mode): boolean {
  return mode === 'promote' || mode === 'stage'
}

/** Everything about one image that can be known without writing: resolved, verified, gated, destinations read. */
async function prepare(request: PromotionRequest, deps: PromoteDependencies, limit: ReturnType<typeof pLimit>, log: Logger): Promise<Prepared> {
  const source = deps.repository(request.source)
  const root = await resolveImage(source, request.source, request.expectedDigest)
  const digest = root.digest
  log.info(`${formatReference(request.source)} resolves to ${digest} (${root.mediaType})`)

  const destinations: Destination[] = distinct(request.destinations).map((ref): Destination => {
    const repository = deps.repository(ref)
    return {
      ref,
      repository,
      root,
      ...(ref.tag ? { tag: ref.tag } : {}),
      copy: copyKind(source, repository),
      get previousDigest() {
        return this.previous?.digest ?? null
      }
    }
  })

  // Signatures: found once at the source, verified before anything else happens, then carried along.
  const children = parseManifest(root, `manifest ${digest}`).manifests.map((m) => m.digest)
  const verifier = deps.verifier
  const signedSubjects = verifier ? [digest, ...(verifier.policy.signedPlatforms === 'all' ? children : [])] : []
  const carried = destinations.filter((d) => d.copy !== 'same-repository')
  const copySignatures = (request.copySignatures ?? true) && writes(request.mode) && carried.length > 0
  const attachmentSubjects = [...new Set([...signedSubjects, ...(copySignatures ? [digest, ...children] : []), ...(deps.gate ? [digest] : [])])]
  // A retag in the same repository needs only the root; children and blobs are fetched when something moves them.
  const needsGraph = request.verifyBlobs || (writes(request.mode) && destinations.some((d) => d.copy !== 'same-repository'))

  // Three independent sets of reads, side by side: what the image is made of, what is attached to it, what each destination holds.
  const [graph, listing] = await Promise.all([
    needsGraph ? loadImageGraph(source, root, limit) : { root, children: [], blobs: [], platforms: platformsOf(root) },
    attachmentSubjects.length ? findAttachments(source, attachmentSubjects, limit) : { attachments: [], notes: [], referrersVia: {} },
    Promise.all(destinations.map((d) => limit(() => readPrevious(d, digest))))
  ])

  let blobsVerified: PromotionResult['blobsVerified']
  if (request.verifyBlobs) {
    blobsVerified = await verifyBlobs(source, graph, limit)
    log.info(`verified ${blobsVerified.count} blobs (${blobsVerified.bytes} bytes) against their digests`)
  }

  let verified: VerifiedSignature[] = []
  if (verifier) {
    verified = await verifier.verifyImage({
      repository: source,
      attachments: listing,
      subjects: signedSubjects,
      root,
      ...(deps.externalEvidence ? { externalEvidence: deps.externalEvidence } : {})
    })
    log.info(`signature policy satisfied by ${verified.length} signature(s): ${verified.map((v) => v.identity ?? v.keyId).join(', ')}`)
  }

  const gate = deps.gate ? await checkPromotionGate({ ...deps.gate, repository: source, listing, root }) : undefined
  if (gate) log.info(`gate "${deps.gate!.environment}" open: promotion record signed by ${gate.signature.identity ?? gate.signature.keyId}`)

  return {
    request,
    source,
    root,
    graph,
    listing,
    destinations,
    pending: destinations.filter((d) => d.previousDigest !== digest),
    carried,
    copySignatures,
    signedSubjects,
    verified,
    ...(gate ? { gate } : {}),
    base: {
      mode: request.mode,
      source: formatReference(request.source),
      digest,
      image: pinnedReference(request.source, digest),
      mediaType: root.mediaType,
      platforms: graph.platforms,
      verified,
      notes: [...listing.notes],
      records: [],
      ...(blobsVerified ? { blobsVerified } : {}),
      ...(gate ? { gate } : {})
    }
  }
}

/** Signatures, attestations and referrers to every other repository, each verified there before a tag moves. */
async function carrySignatures(p: Prepared, deps: PromoteDependencies, options: WriteOptions): Promise<number> {
  if (!p.copySignatures) return 0
  const verifier = deps.verifier
  let attachmentsCopied = 0
  for (const target of distinctRepositories(p.carried)) {
    const outcome = await copyAttachments(p.listing.attachments, p.source, target.repository, options)
    attachmentsCopied += outcome.copied
    p.base.notes.push(...outcome.notes)
    if (outcome.copied)
      options.log.info(`${target.repository.name}: carried ${outcome.copied} signatures, attestations and referrers (${outcome.present} already there)`)
    // What a verifier at the new home will see: the signature found there must verify before its tag moves.
    if (verifier && p.verified.some((v) => v.format !== 'github-attestation')) {
      const there = await findAttachments(target.repository, p.signedSubjects, options.limit)
      await verifier.verifyImage({ repository: target.repository, attachments: there, subjects: p.signedSubjects, root: p.root })
    }
  }
  return attachmentsCopied
}

/** attest-promotion: one signed record per image, attached at each repository it moves to, before tags move. */
async function attachRecord(p: Prepared, deps: PromoteDependencies, log: Logger): Promise<void> {
  if (!deps.record || p.pending.length === 0) return
  const digest = p.root.digest
  const statement = promotionStatement(repositoryName(p.request.source), {
    environment: deps.record.environment,
    action: deps.record.action ?? 'promote',
    source: formatReference(p.request.source),
    digest,
    destinations: p.destinations.map((d) => {
      const reference = formatReference(d.ref)
      const restores = deps.record!.restores?.[reference]
      return { reference, previousDigest: d.previousDigest, status: statusOf(d.previousDigest, digest), ...(restores ? { restores } : {}) }
    }),
    verification: verificationSummary(p.gate ? [...p.verified, p.gate.signature] : p.verified),
    workflow: deps.record.run,
    promotedAt: (deps.record.now?.() ?? new Date()).toISOString()
  })
  const bundle = await deps.record.signer.sign(statement)
  for (const target of distinctRepositories(p.pending)) {
    const referrer = await attachBundle(target.repository, p.root, bundle, PROMOTION_PREDICATE_TYPE)
    p.base.records.push(`${target.repository.name}@${referrer}`)
  }
  log.info(`promotion record for "${deps.record.environment}" signed with ${deps.record.signer.description}, attached at ${p.base.records.join(', ')}`)
}

/** Each destination's result, once what it holds now is known to be the digest. */
function confirmed(p: Prepared, landed: readonly PromiseSettledResult<string | undefined>[]): DestinationResult[] {
  const digest = p.root.digest
  return p.destinations.map((d, i) => {
    const found = (landed[i] as PromiseFulfilledResult<string | undefined>).value
    if (found !== digest) {
      // Not rolled back: another writer moved the tag after us, and its write is as legitimate as ours.
      throw new PromoteError(
        'READBACK_MISMATCH',
        `after writing, ${formatReference(d.ref)} resolves to ${found ?? 'nothing'}, not ${digest}; another writer may have moved it, or the registry did not keep the write`
      )
    }
    return result(d, digest, statusOf(d.previousDigest, digest))
  })
}

/** One destination per repository: several tags in one repository share its content. */
function distinctRepositories(destinations: readonly Destination[]): Destination[] {
  const byRepository = new Map<string, Destination>()
  for (const d of destinations) byRepository.set(`${d.repository.store} ${repositoryName(d.ref)}`, d)
  return [...byRepository.values()]
}

function result(d: Destination, digest: string, status: DestinationStatus): DestinationResult {
  return { reference: formatReference(d.ref), digest, previousDigest: d.previousDigest, status, copy: d.copy }
}

function checkImmutableTags(destinations: readonly Destination[], digest: string, pattern: RegExp | undefined): void {
  if (!pattern) return
  const conflicts = destinations.filter((d) => d.tag && pattern.test(d.tag) && d.previousDigest !== null && d.previousDigest !== digest)
  if (conflicts.length === 0) return
  const lines = conflicts.map((d) => `${formatReference(d.ref)} already points at ${d.previousDigest}`)
  throw new PromoteError(
    'IMMUTABLE_TAG',
    `refusing to move immutable tags (pattern ${pattern.source}): ${lines.join('; ')}. Nothing was written. Promote under a new tag, or change immutable-tags if moving it is intended`
  )
}

/** verify mode: every destination's check already fetched and hashed what it holds. */
function verifyDestinations(destinations: readonly Destination[], digest: string): DestinationResult[] {
  const missing = destinations.filter((d) => d.previousDigest !== digest)
  if (missing.length > 0) {
    const lines = missing.map((d) => `${formatReference(d.ref)} is ${d.previousDigest ?? 'absent'}`)
    throw new PromoteError('NOT_PROMOTED', `not every destination holds ${digest}: ${lines.join('; ')}`)
  }
  return destinations.map((d) => result(d, digest, 'verified'))
}

type WriteOptions = { limit: ReturnType<typeof pLimit>; retry: RetryPolicy; signal?: AbortSignal; log: Logger; progress?: (progress: CopyProgress) => void }

/** Content first, once per destination repository, for every destination... */
async function copyContent(
  pending: readonly Destination[],
  source: Repository,
  graph: ImageGraph,
  options: WriteOptions & { readonly landed: Map<string, Map<string, Promise<Repository>>> }
): Promise<CopyStats> {
  const total = emptyStats()
  await Promise.all(
    distinctRepositories(pending.filter((d) => d.copy !== 'same-repository')).map(async (d) => {
      let landed = options.landed.get(d.repository.store)
      if (!landed) options.landed.set(d.repository.store, (landed = new Map<string, Promise<Repository>>()))
      const stats = await copyImageContent(graph, source, d.repository, { ...options, landed })
      options.log.info(
        `${d.repository.name}: ${stats.blobsUploaded} blobs uploaded (${stats.bytesUploaded} bytes), ${stats.blobsMounted} mounted, ${stats.blobsPresent} already present`
      )
      for (const key of Object.keys(total) as (keyof CopyStats)[]) total[key] += stats[key]
    })
  )
  return total
}

/**
 * ...then the root manifest under each tag (or its digest), which is when environments see the change: tags that
 * never move (immutable ones, digests) first, floating tags last, so a failure among the first moves no
 * environment. If any tag fails to move, the ones that did are put back where they were, across every image of a
 * release, so a failed run leaves no environment changed.
 */
async function moveTags(pending: readonly { d: Destination; stats: CopyStats; immutableTags: RegExp | undefined }[], options: WriteOptions): Promise<void> {
  const floating = ({ d, immutableTags }: (typeof pending)[number]): boolean => d.tag !== undefined && !immutableTags?.test(d.tag)
  const moved: Destination[] = []
  for (const entries of [pending.filter((e) => !floating(e)), pending.filter(floating)]) {
    const wave = entries.map((e) => e.d)
    const outcomes = await Promise.allSettled(
      entries.map(({ d, stats }) =>
        options.limit(async () => {
          await d.repository.putManifest(d.tag ?? d.root.digest, d.root)
          stats.manifestsWritten++
          options.log.info(`${formatReference(d.ref)} -> ${d.root.digest}`)
        })
      )
    )
    moved.push(...wave.filter((_, i) => outcomes[i]!.status === 'fulfilled'))
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ d: wave[i]!, reason: o.reason as unknown }] : []))
    if (failed.length === 0) continue
    // A write that failed may still have landed: its answer lost on the way back, the retries refused (the fault
    // suite found it). A failed tag that now points at the digest was moved by this run too.
    const landed = await Promise.all(
      failed.map(async ({ d }) => (d.tag && (await d.repository.resolveTag(d.tag).catch(() => undefined)) === d.root.digest ? [d] : []))
    )
    const first = failed[0]!
    throw failedAfterWriting(
      `moving ${failed.map((f) => formatReference(f.d.ref)).join(', ')} failed`,
      first.reason,
      await restoreMovedTags([...moved, ...landed.flat()])
    )
  }
}

/** The error of a run that failed after writing: the first fault's code and message, and what was put back. */
function failedAfterWriting(what: string, reason: unknown, restored: string): PromoteError {
  return new PromoteError(errorCode(reason), `${what}: ${errorMessage(reason)}.${restored}`, { cause: reason })
}

/** History tags, for registries with immutable-tag settings and lifecycle rules that must keep what ran. */
async function keepHistory(pending: readonly Destination[], options: WriteOptions): Promise<void> {
  await Promise.all(
    pending
      .filter((d) => d.tag && d.previous)
      .map((d) =>
        options.limit(async () => {
          const name = historyTag(d.tag!, d.previousDigest!)
          if ((await d.repository.resolveTag(name)) === d.previousDigest) return
          await d.repository.putManifest(name, d.previous!)
          options.log.info(`kept ${d.repository.name}:${name} -> ${d.previousDigest}`)
        })
      )
  )
}

/** Puts tags this run moved back where they were; says what it did, for the error message. */
async function restoreMovedTags(moved: readonly Destination[]): Promise<string> {
  const restored = await Promise.all(moved.filter((d) => d.tag).map((d) => restoreTag(d)))
  return restored.length ? ` Tags already moved were put back: ${restored.join('; ')}.` : ''
}

// Each registry call below already retries transient faults; a second loop around it would only multiply the waits.
async function restoreTag(d: Destination): Promise<string> {
  const where = formatReference(d.ref)
  try {
    if (!d.previous) {
      await d.repository.deleteTag(d.tag!)
      return `${where} removed`
    }
    await d.repository.putManifest(d.tag!, d.previous)
    return `${where} back at ${d.previousDigest}`
  } catch (error) {
    return `${where} could NOT be restored (${errorMessage(error)}); it points at the new digest`
  }
}
