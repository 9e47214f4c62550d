import pLimit from 'p-limit'
import { PromoteError, errorMessage } from './errors.js'
import { parseManifest, type Manifest, type ManifestContent } from './oci/manifest.js'
import { INDEX_MEDIA_TYPES } from './oci/media-types.js'
import { listReferrers, readBlob } from './oci/referrers.js'
import type { Repository } from './oci/repository.js'
import { verifiedRecords } from './gates.js'
import { readHistoryTag, writesHistoryAs } from './history-tags.js'
import { LEGACY_SUFFIXES, findAttachments } from './oci/attachments.js'
import { TAG_PATTERN } from './oci/reference.js'
import type { PackageVersions } from './packages.js'
import type { Logger } from './promote.js'
import type { ImageVerifier } from './verify/index.js'
import { escapeRegExp } from './verify/policy.js'

/**
 * Retention that knows what was promoted: per digest (registries delete manifests, and a tag goes with its
 * digest), delete only what no keep rule holds, and never on doubt.
 */
export interface PruneRequest {
  /** Tags that always keep their digest; default: the environment tags (those with history tags) and `immutableTags`. */
  readonly keepTags?: RegExp
  /** Tags whose digests may go (every tag of a digest must match); untagged digests may go anyway. */
  readonly pruneTags?: RegExp
  readonly immutableTags?: RegExp
  /** Only digests older than this may go. */
  readonly olderThanMs: number
  /** The N most recent digests among those that may go are kept all the same. */
  readonly keepLast: number
  /**
   * Per environment tag, what it may roll back to: the last `count` digests it held, or every digest it held within
   * the last `ms`. From verified promotion records where there are some (with their dates), else from the tag and
   * its history tags (a count only: they carry no dates, so a window in time keeps them all).
   */
  readonly rollbackWindow: { readonly count: number } | { readonly ms: number }
  readonly dryRun: boolean
  /** A run that would delete more refuses before deleting anything. */
  readonly maxDeletions: number
  readonly concurrency: number
  readonly now?: Date
}

export type PrunedStatus = 'deleted' | 'kept' | 'planned'

export interface PrunedDigest {
  readonly digest: string
  readonly tags: readonly string[]
  readonly status: PrunedStatus
  /** Which rule kept it, or why it went. */
  readonly reason: string
  /** Its manifest, config and layers, as far as known: what deleting it frees at most (layers may be shared). */
  readonly bytes?: number
  /** The image's creation time, when known. */
  readonly created?: string
}

export interface PruneResult {
  readonly repository: string
  readonly dryRun: boolean
  readonly digests: readonly PrunedDigest[]
  /** Signatures, attestations, referrer indexes and platform manifests deleted with the images. */
  readonly attachmentsDeleted: number
}

// cosign's `sha256-<hex>.sig/.att/.sbom`, the suffixes attachments.ts looks up.
const COSIGN_TAG = new RegExp(`^sha256-([a-f0-9]{64})\\.(${LEGACY_SUFFIXES.join('|')})$`)
const FALLBACK_TAG = /^sha256-([a-f0-9]{64})$/
const CREATED_ANNOTATION = 'org.opencontainers.image.created'
const MAX_CONFIG_BYTES = 1024 * 1024

interface Candidate {
  readonly digest: string
  /** Tags that are neither cosign's, fallback indexes nor history tags. */
  readonly tags: string[]
  readonly history: string[]
  manifest?: Manifest | undefined
  /** The manifest parsed, once; undefined when it could not be read or is not what it says it is. */
  content?: ManifestContent | undefined
  created?: Date | undefined
  bytes?: number
  kept?: string
}

/** A digest a tag held, since the promotion that put it there. */
interface Held {
  readonly digest: string
  readonly since: Date
}

function addTo(map: Map<string, Candidate>, digest: string): Candidate {
  let candidate = map.get(digest)
  if (!candidate) map.set(digest, (candidate = { digest, tags: [], history: [] }))
  return candidate
}

/** When the image was made: the config's `created`, else the manifest's created annotation; undefined when unknown. */
async function creationTime(repository: Repository, content: ManifestContent): Promise<Date | undefined> {
  const annotated = content.annotations?.[CREATED_ANNOTATION]
  if (annotated) return validDate(annotated)
  // An index: its first platform's age (they are built together).
  const [config] = content.blobs
  if (!config) {
    const first = content.manifests[0] && (await repository.fetchManifest(content.manifests[0].digest))
    return first && !INDEX_MEDIA_TYPES.has(first.mediaType) ? creationTime(repository, parseManifest(first, `manifest ${first.digest}`)) : undefined
  }
  const bytes = await readBlob(repository, config, MAX_CONFIG_BYTES)
  const created = (JSON.parse(bytes.toString('utf8')) as { created?: unknown }).created
  return typeof created === 'string' ? validDate(created) : undefined
}

function validDate(text: string): Date | undefined {
  const date = new Date(text)
  return Number.isNaN(date.getTime()) ? undefined : date
}

/**
 * What a repository holds, as its store tells: every tag and the digest it points at, the digests it knows without
 * a tag, when each last changed where the store knows it, and how to delete one.
 */
interface Inventory {
  readonly tags: ReadonlyMap<string, string>
  readonly untagged: readonly string[]
  readonly changed: ReadonlyMap<string, Date>
  delete(digest: string): Promise<void>
}

/** The registry API: tags/list and a HEAD per tag; untagged digests are only known through the tags that point at them. */
async function registryInventory(repository: Repository, limit: ReturnType<typeof pLimit>): Promise<Inventory> {
  const tags = new Map<string, string>()
  await Promise.all(
    (await repository.listTags()).map((tag) =>
      limit(async () => {
        const digest = await repository.resolveTag(tag)
        if (digest) tags.set(tag, digest)
      })
    )
  )
  return { tags, untagged: [], changed: new Map(), delete: (digest) => repository.deleteManifest(digest) }
}

/** GitHub Packages (ghcr.io): every version, tagged or not, with its tags and when it last changed. */
async function packageInventory(versions: PackageVersions): Promise<Inventory> {
  const listed = await versions.list()
  const byDigest = new Map(listed.map((v) => [v.digest, v]))
  return {
    tags: new Map(listed.flatMap((v) => v.tags.map((t) => [t, v.digest] as const))),
    untagged: listed.filter((v) => v.tags.length === 0).map((v) => v.digest),
    changed: new Map(listed.flatMap((v) => (v.updatedAt ? [[v.digest, v.updatedAt] as const] : []))),
    async delete(digest) {
      const version = byDigest.get(digest)
      if (version) await versions.delete(version)
    }
  }
}

/**
 * Decides, for every digest of the repository, whether it stays or goes, and deletes what goes (unless dry-run):
 * each deleted image with its cosign signature tags, its referrers and its fallback referrers index, and the
 * platform manifests of a deleted index, except what a kept digest still uses.
 */
export interface PruneDependencies {
  readonly log: Logger
  /** The repository is a GitHub Packages one (ghcr.io), listed and deleted through GitHub's API. */
  readonly versions?: PackageVersions
  /** Verifies promotion records under the promotion policy: their environments and dates make the rollback window. */
  readonly recordVerifier?: ImageVerifier
}

export async function prune(repository: Repository, request: PruneRequest, deps: PruneDependencies): Promise<PruneResult> {
  const { log, versions } = deps
  const limit = pLimit(Math.max(1, request.concurrency))
  const now = request.now ?? new Date()
  const inventory = versions ? await packageInventory(versions) : await registryInventory(repository, limit)
  log.info(`${versions?.name ?? repository.name}: ${inventory.tags.size} tags, ${inventory.untagged.length} untagged versions`)

  // 1. Every digest the tags name, the untagged ones the store lists, and those cosign and fallback tags point at.
  const candidates = new Map<string, Candidate>()
  const attachmentTags = new Map<string, string[]>()
  const environments = new Set<string>()
  for (const digest of inventory.untagged) addTo(candidates, digest)
  const attachedTo = new Set<string>()
  const historyStarts = new Set<string>()
  for (const [tag, digest] of inventory.tags) {
    const attached = COSIGN_TAG.exec(tag) ?? FALLBACK_TAG.exec(tag)
    if (attached) {
      const subject = `sha256:${attached[1]!}`
      attachmentTags.set(subject, [...(attachmentTags.get(subject) ?? []), tag])
      attachedTo.add(subject)
      continue
    }
    const history = readHistoryTag(tag)
    if (history && digest.startsWith(history.digestPrefix)) {
      addTo(candidates, digest).history.push(tag)
      historyStarts.add(history.tagStart)
    } else {
      addTo(candidates, digest).tags.push(tag)
    }
  }
  // Each environment is the tag that writes those history tags: one over 110 characters writes them under its start.
  const plainTags = [...candidates.values()].flatMap((c) => c.tags)
  for (const start of historyStarts) {
    const writers = plainTags.filter((t) => writesHistoryAs(t, start))
    for (const environment of writers.length ? writers : [start]) environments.add(environment)
  }
  // What an attachment tag points at is an attachment, not an image; the subject it names is an image if it exists.
  const attachmentDigests = new Set([...attachmentTags.values()].flat().map((t) => inventory.tags.get(t)!))
  for (const digest of attachmentDigests) if (!candidates.get(digest)?.tags.length) candidates.delete(digest)
  await Promise.all(
    [...attachedTo].map((subject) =>
      limit(async () => {
        if (!candidates.has(subject) && (await repository.hasManifest(subject))) addTo(candidates, subject)
      })
    )
  )

  // 2. What each one is and how old: an unreadable manifest or an unknown age keeps its digest.
  await Promise.all(
    [...candidates.values()].map((c) =>
      limit(async () => {
        try {
          const manifest = await repository.fetchManifest(c.digest)
          if (!manifest) return
          // Parsed once, here: a manifest that is not what it says stays unread, and so is kept, not a fault of the run.
          c.content = parseManifest(manifest, `manifest ${c.digest}`)
          c.manifest = manifest
          c.bytes = manifest.bytes.length + c.content.blobs.reduce((n, d) => n + d.size, 0)
          c.created = inventory.changed.get(c.digest) ?? (await creationTime(repository, c.content))
        } catch (error) {
          log.debug?.(`${repository.name}@${c.digest}: ${errorMessage(error)}`)
        }
      })
    )
  )

  // Platform manifests and referrers go with their index or subject, never on their own: an untagged version of
  // GitHub Packages is as often one of those as an image.
  for (const c of [...candidates.values()]) {
    const parent = c.tags.length || c.history.length ? undefined : c.content?.subject?.digest
    if (parent && candidates.has(parent)) candidates.delete(c.digest)
  }
  for (const c of [...candidates.values()]) {
    for (const child of c.content?.manifests ?? []) {
      const known = candidates.get(child.digest)
      if (known && !known.tags.length && !known.history.length) candidates.delete(child.digest)
    }
  }

  // What the promotion records say each tag of this repository held, and since when.
  const timelines = deps.recordVerifier
    ? await recordedTimelines(repository, [...candidates.values()], deps.recordVerifier, request.concurrency)
    : new Map<string, Held[]>()
  for (const tag of timelines.keys()) environments.add(tag)

  // 3. Keep rules, in order; the first that holds is the reason given.
  const keepTags = request.keepTags ?? defaultKeepTags(environments, request.immutableTags)
  const all = [...candidates.values()]
  const keep = (c: Candidate, reason: string): void => {
    c.kept ??= reason
  }
  for (const c of all) {
    const held = c.tags.find((t) => keepTags?.test(t))
    if (held) keep(c, `tag ${held} is kept (${request.keepTags ? 'keep-tags' : 'an environment or release tag'})`)
  }
  // The rollback window of each environment tag.
  const window = request.rollbackWindow
  const windowText = 'count' in window ? `last ${window.count}` : `last ${Math.round(window.ms / 3_600_000)} h`
  for (const environment of environments) {
    const timeline = timelines.get(environment)
    if (timeline?.length) {
      // Newest first; each digest was held until the next one came.
      const newest = [...timeline].sort((a, b) => b.since.getTime() - a.since.getTime())
      newest.forEach((entry, i) => {
        const until = i === 0 ? now : newest[i - 1]!.since
        const inWindow = 'count' in window ? i < window.count : now.getTime() - until.getTime() <= window.ms
        const c = candidates.get(entry.digest)
        if (inWindow && c) keep(c, `in the rollback window of ${environment} (${windowText}, promotion records)`)
      })
      continue
    }
    const held = all
      .filter((c) => c.tags.includes(environment) || c.history.some((h) => writesHistoryAs(environment, readHistoryTag(h)!.tagStart)))
      .sort((a, b) => (b.created?.getTime() ?? Infinity) - (a.created?.getTime() ?? Infinity))
    // History tags carry no dates: a window in time keeps every digest they name.
    for (const c of 'count' in window ? held.slice(0, window.count) : held) keep(c, `in the rollback window of ${environment} (${windowText}, history tags)`)
  }
  for (const c of all) {
    if (!c.content) keep(c, 'its manifest cannot be read')
    else if (!c.created) keep(c, 'its age is not known')
    else if (c.tags.some((t) => !request.pruneTags?.test(t))) keep(c, `tag ${c.tags.find((t) => !request.pruneTags?.test(t))!} is not matched by prune-tags`)
    else if (now.getTime() - c.created.getTime() < request.olderThanMs) keep(c, 'newer than older-than')
  }
  const eligible = all.filter((c) => !c.kept).sort((a, b) => b.created!.getTime() - a.created!.getTime())
  for (const c of eligible.slice(0, request.keepLast)) keep(c, `among the last ${request.keepLast} (keep-last)`)
  // The platforms of a kept index stay with it.
  const usedByKept = new Set(all.filter((c) => c.kept).map((c) => c.digest))
  for (const c of all.filter((c) => c.kept)) {
    for (const child of c.content?.manifests ?? []) {
      usedByKept.add(child.digest)
      const known = candidates.get(child.digest)
      if (known) keep(known, `a platform of kept index ${c.digest}`)
    }
  }
  const doomed = all.filter((c) => !c.kept)

  if (doomed.length > request.maxDeletions) {
    throw new PromoteError(
      'INPUT_INVALID',
      `${repository.name}: ${doomed.length} images would be deleted, more than max-deletions (${request.maxDeletions}); nothing was deleted. Check prune-tags and older-than, or raise max-deletions if that many is intended`
    )
  }

  // 4. What goes with each image: cosign tags, referrers and fallback index, platform manifests; not what a kept digest uses.
  const hanging = async (c: Candidate): Promise<string[]> => {
    const digests = (attachmentTags.get(c.digest) ?? []).map((tag) => inventory.tags.get(tag)!)
    const referrers = await listReferrers(repository, c.digest)
    digests.push(...referrers.descriptors.map((d) => d.digest))
    digests.push(...(c.content?.manifests ?? []).map((m) => m.digest))
    return digests
  }
  // A kept image's signatures and referrers are what it uses too: a fallback index of a doomed image (anyone who can
  // push may write one) that lists them must not take them along.
  if (!request.dryRun && doomed.length > 0) {
    for (const kept of await Promise.all(all.filter((c) => c.kept).map((c) => limit(() => hanging(c))))) for (const d of kept) usedByKept.add(d)
  }
  const attachmentsOf = async (c: Candidate): Promise<string[]> => {
    return [...new Set(await hanging(c))].filter((d) => !usedByKept.has(d) && d !== c.digest)
  }
  let attachmentsDeleted = 0
  const results = new Map<string, PrunedDigest>()
  for (const c of all.filter((c) => c.kept)) results.set(c.digest, describe(c, 'kept', c.kept!))
  const deletions = Promise.all(
    doomed.map((c) =>
      limit(async () => {
        const why = c.tags.length ? `every tag matches prune-tags, older than older-than` : 'untagged or history only, older than older-than'
        if (request.dryRun) {
          results.set(c.digest, describe(c, 'planned', why))
          return
        }
        const attached = await attachmentsOf(c)
        // The image first: if that fails, its signatures still stand beside it.
        await inventory.delete(c.digest)
        for (const digest of attached) {
          await inventory.delete(digest)
          attachmentsDeleted++
        }
        log.info(`deleted ${repository.name}@${c.digest}${c.tags.length ? ` (${c.tags.join(', ')})` : ''} and ${attached.length} attached manifests`)
        results.set(c.digest, describe(c, 'deleted', why))
      })
    )
  )
  try {
    await deletions
  } catch (error) {
    if (!(error instanceof PromoteError) || error.code !== 'DELETION_REFUSED') throw error
    // The registry does not delete at all: say what would have gone, so the rules can be checked and the images deleted elsewhere.
    const would = doomed.filter((c) => results.get(c.digest)?.status !== 'deleted')
    throw new PromoteError(
      'DELETION_REFUSED',
      `${error.message}. ${would.length} images would have been deleted: ${would.map((c) => `${c.digest}${c.tags.length ? ` (${c.tags.join(', ')})` : ''}`).join('; ')}`,
      { cause: error }
    )
  }
  return { repository: versions?.name ?? repository.name, dryRun: request.dryRun, digests: all.map((c) => results.get(c.digest)!), attachmentsDeleted }
}

function describe(c: Candidate, status: PrunedStatus, reason: string): PrunedDigest {
  return {
    digest: c.digest,
    tags: [...c.tags, ...c.history],
    status,
    reason,
    ...(c.bytes !== undefined ? { bytes: c.bytes } : {}),
    ...(c.created ? { created: c.created.toISOString() } : {})
  }
}

/** The environment tags (those with history tags) and the release tags: what production may roll back to. */
function defaultKeepTags(environments: ReadonlySet<string>, immutableTags: RegExp | undefined): RegExp | undefined {
  const names = [...environments].map(escapeRegExp)
  const parts = [...names, ...(immutableTags ? [immutableTags.source.replace(/^\^/, '').replace(/\$$/, '')] : [])]
  return parts.length ? new RegExp(`^(?:${parts.join('|')})$`) : undefined
}

/**
 * Per tag of this repository, the digests verified promotion records say it held and since when: each record
 * sits on the digest it promoted and names the destinations it moved.
 */
async function recordedTimelines(
  repository: Repository,
  candidates: readonly Candidate[],
  verifier: ImageVerifier,
  concurrency: number
): Promise<Map<string, Held[]>> {
  const timelines = new Map<string, Held[]>()
  // Its own limiter: findAttachments takes slots of the one it is given, and must not wait for its caller's.
  const outer = pLimit(Math.max(1, Math.ceil(concurrency / 2)))
  const inner = pLimit(Math.max(1, concurrency))
  await Promise.all(
    candidates.map((c) =>
      outer(async () => {
        if (!c.manifest) return
        const listing = await findAttachments(repository, [c.digest], inner)
        for (const record of await verifiedRecords({ verifier, repository, listing, root: c.manifest })) {
          const since = new Date(record.predicate.promotedAt)
          if (Number.isNaN(since.getTime())) continue
          for (const d of record.predicate.destinations) {
            if (!d.reference.startsWith(`${repository.name}:`)) continue
            const tag = d.reference.slice(repository.name.length + 1)
            if (!TAG_PATTERN.test(tag)) continue
            timelines.set(tag, [...(timelines.get(tag) ?? []), { digest: c.digest, since }])
          }
        }
      })
    )
  )
  return timelines
}
