import { PromoteError } from '../errors.js'
import { digestTag, sha256Digest } from './digest.js'
import { indexEntries, toManifest, type Descriptor, type Manifest } from './manifest.js'
import { INDEX_MEDIA_TYPES, OCI_INDEX } from './media-types.js'
import type { Repository } from './repository.js'

export interface ReferrerListing {
  readonly descriptors: readonly Descriptor[]
  /** How they were found: the referrers API, the `sha256-<hex>` fallback tag, both, or not at all. */
  readonly via: ReferrersVia
  readonly notes: readonly string[]
}

export type ReferrersVia = 'api' | 'tag' | 'api+tag' | 'none'

/**
 * Lists what refers to `digest`: the referrers API where the store has one, and the fallback tag, which must be
 * an index and must not be the image itself (some registries resolve `sha256-<hex>` as the digest: oras-go#1396).
 * Both are read: a registry that gained the API keeps what clients wrote under the tag before, and ghcr.io
 * answers the API (with an empty list, sbomify#1530) while GitHub's attest actions write the tag there
 * (attest-build-provenance#71). Every referrer is verified on its own, so reading more never trusts more.
 */
export async function listReferrers(repository: Repository, digest: string): Promise<ReferrerListing> {
  const [fromApi, fromTag] = await Promise.all([repository.referrersFromApi(digest), fallbackReferrers(repository, digest)])
  if (!fromApi) return fromTag
  const descriptors = [...fromApi.descriptors]
  for (const d of fromTag.descriptors) if (!descriptors.some((known) => known.digest === d.digest)) descriptors.push(d)
  return { descriptors, via: fromTag.via === 'tag' ? 'api+tag' : 'api', notes: [...fromApi.skipped, ...fromTag.notes] }
}

async function fallbackReferrers(repository: Repository, digest: string): Promise<ReferrerListing> {
  const tag = digestTag(digest)
  const fallback = await repository.fetchManifest(tag, { probe: true })
  if (!fallback) return { descriptors: [], via: 'none', notes: [] }
  if (fallback.digest === digest) {
    return { descriptors: [], via: 'none', notes: [`${repository.name}:${tag} resolves to the image itself, not a referrers index; ignored`] }
  }
  if (!INDEX_MEDIA_TYPES.has(fallback.mediaType)) {
    return { descriptors: [], via: 'none', notes: [`${repository.name}:${tag} is a ${fallback.mediaType}, not a referrers index; ignored`] }
  }
  const { descriptors, skipped } = indexEntries(fallback.bytes, `${repository.name}:${tag}`)
  return { descriptors, via: 'tag', notes: skipped }
}

/** Reads a small blob whole and checks it is what its descriptor says. */
export async function readBlob(repository: Repository, descriptor: Descriptor, maxBytes: number): Promise<Buffer> {
  if (descriptor.size > maxBytes) {
    throw new PromoteError(
      'BLOB_MISMATCH',
      `blob ${descriptor.digest} in ${repository.name} is ${descriptor.size} bytes; more than ${maxBytes} is refused here`
    )
  }
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of await repository.openBlob(descriptor)) {
    total += (chunk as Buffer).length
    if (total > descriptor.size) break
    chunks.push(chunk as Buffer)
  }
  const bytes = Buffer.concat(chunks)
  if (bytes.length !== descriptor.size || sha256Digest(bytes) !== descriptor.digest) {
    throw new PromoteError('BLOB_MISMATCH', `blob ${descriptor.digest} in ${repository.name} does not match its descriptor`)
  }
  return bytes
}

/**
 * Records `referrer` in the fallback index of `subject` at `repository`,
 * merging with what is there. Refuses to ever point the fallback tag at the
 * subject itself, which would make every reader mistake the image for its referrers.
 */
async function addToFallbackIndex(repository: Repository, subject: string, referrer: Descriptor): Promise<boolean> {
  const tag = digestTag(subject)
  const existing = await repository.fetchManifest(tag, { probe: true })
  let manifests: Descriptor[] = []
  if (existing && existing.digest !== subject && INDEX_MEDIA_TYPES.has(existing.mediaType)) {
    // Entries that are not valid descriptors point nowhere a reader could follow; the rewritten index drops them.
    manifests = [...indexEntries(existing.bytes, `${repository.name}:${tag}`).descriptors]
  }
  if (manifests.some((m) => m.digest === referrer.digest)) return false
  manifests.push(referrer)
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }))
  const index: Manifest = toManifest(bytes, OCI_INDEX, `fallback index ${tag}`)
  if (index.digest === subject) throw new PromoteError('MANIFEST_INVALID', `refusing to write ${repository.name}:${tag} pointing at the image itself`)
  await repository.putManifest(tag, index)
  return true
}

/**
 * Makes referrers findable from their subject in one repository. A registry
 * that indexes referrers itself says so: it answers the referrer's PUT with
 * `OCI-Subject` (distribution-spec, "Pushing Manifests with Subject"), or its
 * referrers API lists the referrer. Anything else gets the referrer merged into
 * the subject's fallback index: a 200 from the API alone proves nothing (ghcr.io
 * answers an empty list and indexes nothing). Updates of one fallback index are
 * queued: each reads, merges and rewrites one tag, so two at once would lose one.
 */
export class ReferrerIndex {
  readonly #repository: Repository
  readonly #listed = new Map<string, Promise<ReadonlySet<string>>>()
  readonly #updates = new Map<string, Promise<boolean>>()

  constructor(repository: Repository) {
    this.#repository = repository
  }

  /**
   * True when this call added `referrer` to the fallback index; false when the registry indexes it or the index
   * already did. `ociSubject`: the OCI-Subject header the referrer's PUT was answered with, if it was put now.
   */
  async add(subject: string, referrer: Descriptor, ociSubject?: string): Promise<boolean> {
    if (ociSubject === subject) return false
    let listed = this.#listed.get(subject)
    if (!listed) {
      listed = this.#repository.referrersFromApi(subject).then((r) => new Set(r?.descriptors.map((d) => d.digest) ?? []))
      this.#listed.set(subject, listed)
    }
    if ((await listed).has(referrer.digest)) return false
    const previous = this.#updates.get(subject) ?? Promise.resolve(false)
    const next = previous.catch(() => false).then(() => addToFallbackIndex(this.#repository, subject, referrer))
    this.#updates.set(subject, next)
    return next
  }
}
