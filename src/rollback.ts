import pLimit, { type LimitFunction } from 'p-limit'
import { findAttachments } from './oci/attachments.js'
import { PromoteError, errorMessage } from './errors.js'
import { environmentRecords } from './gates.js'
import { formatReference, type Reference } from './oci/reference.js'
import type { Repository } from './oci/repository.js'
import { promote, type PromoteDependencies, type PromotionRequest, type PromotionResult } from './promote.js'
import type { PromotionPredicate, PromotionRecord, RecordedDestination } from './records.js'
import type { ImageVerifier } from './verify/index.js'

export interface RollbackRequest extends Omit<PromotionRequest, 'source' | 'mode' | 'expectedDigest'> {
  /** The environment whose tags go back: its promotion records say where they were. */
  readonly environment: string
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

/**
 * Moves each tag back one step through the environment's history, from the
 * verified promotion records of the digest it holds now, and promotes that
 * digest back: verified again under the current policy, recorded as a
 * rollback that says where the next rollback continues from. Destinations
 * that go back to different digests are one promotion each, reported as one
 * result whose digest and image are empty (see mergeResults).
 */
export async function rollback(request: RollbackRequest, deps: PromoteDependencies & { recordVerifier: ImageVerifier }): Promise<PromotionResult> {
  const limit = pLimit(Math.max(1, request.concurrency))
  const targets = await Promise.all(
    request.destinations.map(async (ref) => {
      const where = formatReference(ref)
      if (!ref.tag) throw new PromoteError('INPUT_INVALID', `input "to": ${where} names no tag; rollback moves tags back`)
      const repository = deps.repository(ref)
      deps.declareAccess?.(ref, 'push')
      const current = await repository.resolveTag(ref.tag)
      if (!current) throw new PromoteError('MANIFEST_UNKNOWN', `${where} does not exist; there is nothing to roll back`)
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
    })
  )
  // One promotion per earlier digest: each is resolved, verified and recorded like any other.
  const byDigest = new Map<string, Reference[]>()
  for (const t of targets) byDigest.set(t.previous, [...(byDigest.get(t.previous) ?? []), t.ref])
  const restores = Object.fromEntries(targets.flatMap((t) => (t.restores ? [[t.where, t.restores]] : [])))
  const results: PromotionResult[] = []
  for (const [digest, refs] of byDigest) {
    const first = refs[0]!
    const source = { ...first, digest } as Reference
    delete (source as { tag?: string }).tag
    results.push(
      await promote({ ...request, source, destinations: refs, mode: 'promote' }, { ...deps, ...(deps.record ? { record: { ...deps.record, restores } } : {}) })
    )
  }
  return mergeResults(results)
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
