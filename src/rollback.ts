import pLimit, { type LimitFunction } from 'p-limit'
import { findAttachments } from './oci/attachments.js'
import { PromoteError, errorMessage } from './errors.js'
import { environmentRecords } from './gates.js'
import { formatReference, withTag, type Reference } from './oci/reference.js'
import type { Repository } from './oci/repository.js'
import { everyCheck, promoteRelease, type PromoteDependencies, type PromotionRequest, type PromotionResult } from './promote.js'
import type { PromotionPredicate, PromotionRecord, RecordedDestination } from './records.js'
import type { ImageVerifier } from './verify/index.js'

export interface RollbackRequest extends Omit<PromotionRequest, 'source' | 'mode' | 'expectedDigest'> {
  /** The environment whose tags go back: its promotion records say where they were. */
  readonly environment: string
  /**
   * The digest every destination must hold now (the `digest` input, a digest in `image`, a release entry's): the
   * rollback undoes that promotion, not one that came after it unnoticed.
   */
  readonly current?: string
}

/** One verified record of the environment, with what it says of one destination. */
interface Step {
  readonly action: PromotionPredicate['action']
  readonly at: string
  readonly entry: RecordedDestination
}

/** The records of `digest` in the environment that name `where`, newest first; none when it carries no record. */
async function stepsAt(
  repository: Repository,
  digest: string,
  where: string,
  environment: string,
  verifier: ImageVerifier,
  limit: LimitFunction,
  required: boolean
): Promise<Step[]> {
  const root = await repository.fetchManifest(digest)
  if (!root) throw new PromoteError('MANIFEST_UNKNOWN', `${where} ${required ? 'points at' : 'held'} ${digest}, which ${repository.name} no longer has`)
  const listing = await findAttachments(repository, [digest], limit)
  let records: PromotionRecord[]
  try {
    records = await environmentRecords({ environment, verifier, repository, listing, root })
  } catch (error) {
    if (!required) return []
    throw new PromoteError('PROMOTION_GATE', `cannot roll back ${where}: ${errorMessage(error)}`, { cause: error })
  }
  return records.flatMap(({ predicate }) => {
    const entry = predicate.destinations.find((d) => d.reference === where)
    return entry ? [{ action: predicate.action, at: predicate.promotedAt, entry }] : []
  })
}

/**
 * Which promotion a rollback undoes: the latest one that brought `current` to
 * the destination. If `current` got there by a rollback, that is the
 * promotion the rollback record says it first came with, so a second
 * rollback goes further back (T→S→R) and never returns to the digest just
 * rolled back from.
 */
function promotionToUndo(steps: readonly Step[], where: string, current: string, environment: string): Step {
  const latest = steps[0]
  if (!latest)
    throw new PromoteError('PROMOTION_GATE', `the "${environment}" records of ${current} do not name ${where}, so they cannot say what ${where} held before`)
  if (latest.action === 'promote') return latest
  const restores = latest.entry.restores
  const origin = steps.find((s) => s.action === 'promote' && (restores ? s.at === restores : s.at < latest.at))
  if (!origin) {
    throw new PromoteError(
      'PROMOTION_GATE',
      `${where} came back to ${current} by a rollback, and no "${environment}" record of ${current} says how it first came to ${where}; there is no earlier digest to roll back to`
    )
  }
  return origin
}

/** Where one destination goes back to, from the verified records of what it holds now; nothing is written. */
async function earlierDigest(ref: Reference, request: RollbackRequest, deps: RollbackDependencies, limit: LimitFunction) {
  const where = formatReference(ref)
  if (!ref.tag) throw new PromoteError('INPUT_INVALID', `input "to": ${where} names no tag; rollback moves tags back`)
  const repository = deps.repository(ref)
  deps.declareAccess?.(ref, 'push')
  const current = await repository.resolveTag(ref.tag)
  if (!current) throw new PromoteError('MANIFEST_UNKNOWN', `${where} does not exist; there is nothing to roll back`)
  if (request.current && current !== request.current) {
    throw new PromoteError(
      'NOT_PROMOTED',
      `${where} holds ${current}, not ${request.current} that the rollback names: another promotion came after it. Nothing was written; name what ${where} holds now, or no digest, to roll that back`
    )
  }
  const undo = promotionToUndo(
    await stepsAt(repository, current, where, request.environment, deps.recordVerifier, limit, true),
    where,
    current,
    request.environment
  )
  const previous = undo.entry.previousDigest
  if (!previous) throw new PromoteError('NOT_PROMOTED', `${where} was created by the promotion of ${current}; there is no earlier digest to roll back to`)
  // Where the rollback after this one continues: the promotion that brought `previous` here before the one undone.
  const before = (await stepsAt(repository, previous, where, request.environment, deps.recordVerifier, limit, false)).find(
    (s) => s.action === 'promote' && s.at < undo.at
  )
  return { ref, where, previous, ...(before ? { restores: before.at } : {}) }
}

type RollbackDependencies = PromoteDependencies & { recordVerifier: ImageVerifier }

/**
 * Moves each tag back one step through the environment's history, from the verified promotion records of the digest
 * it holds now, and promotes that digest back: verified again under the current policy, recorded as a rollback that
 * says where the next rollback continues from. One request per image, one result each; a release goes back as one
 * unit: where every destination goes is found before anything is written, and all of them move in one release
 * promotion, all or nothing (a failed tag write puts back every tag the run moved, whichever image or earlier digest
 * it belongs to). An image whose destinations go back to different digests gets one result whose digest and image
 * are empty (see mergeResults).
 */
export async function rollbackRelease(requests: readonly RollbackRequest[], deps: RollbackDependencies): Promise<PromotionResult[]> {
  const limit = pLimit(Math.max(1, ...requests.map((r) => r.concurrency)))
  const targets = await everyCheck(
    requests.map((request) => Promise.all(request.destinations.map((ref) => earlierDigest(ref, request, deps, limit)))),
    (i) => requests[i]!.destinations.map(formatReference).join(', ')
  )
  // One promotion per image and earlier digest: each is resolved, verified and recorded like any other.
  const promotions: { image: number; request: PromotionRequest }[] = []
  requests.forEach((request, image) => {
    const byDigest = new Map<string, Reference[]>()
    for (const t of targets[image]!) byDigest.set(t.previous, [...(byDigest.get(t.previous) ?? []), t.ref])
    for (const [digest, refs] of byDigest) {
      promotions.push({ image, request: { ...request, source: { ...withTag(refs[0]!, undefined), digest }, destinations: refs, mode: 'promote' } })
    }
  })
  const restores = Object.fromEntries(targets.flat().flatMap((t) => (t.restores ? [[t.where, t.restores]] : [])))
  const results = await promoteRelease(
    promotions.map((p) => p.request),
    { ...deps, ...(deps.record ? { record: { ...deps.record, restores } } : {}) }
  )
  return requests.map((_, image) => mergeResults(results.filter((_, i) => promotions[i]!.image === image)))
}

/**
 * Several rollbacks reported as one run. When the destinations end at
 * different digests, no single digest is "what was deployed": `digest`,
 * `image` and `source` are empty, and each destination says its own.
 */
export function mergeResults(results: readonly PromotionResult[]): PromotionResult {
  const [first, ...rest] = results
  const merged = rest.reduce(
    (all, r) => ({
      ...all,
      destinations: [...all.destinations, ...r.destinations],
      verified: [...all.verified, ...r.verified],
      records: [...all.records, ...r.records],
      notes: [...all.notes, ...r.notes],
      platforms: [...new Set([...all.platforms, ...r.platforms])],
      attachmentsCopied: all.attachmentsCopied + r.attachmentsCopied
    }),
    first!
  )
  return rest.some((r) => r.digest !== first!.digest) ? { ...merged, digest: '', image: '', source: '', mediaType: '' } : merged
}
