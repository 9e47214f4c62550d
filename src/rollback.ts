import pLimit from 'p-limit'
import { findAttachments } from './attachments.js'
import { PromoteError, errorMessage } from './errors.js'
import { checkPromotionGate } from './gates.js'
import { formatReference, type Reference } from './oci/reference.js'
import { promote, type PromoteDependencies, type PromotionRequest, type PromotionResult } from './promote.js'
import type { PromotionPredicate } from './records.js'
import type { ImageVerifier } from './verify/index.js'

export interface RollbackRequest extends Omit<PromotionRequest, 'source' | 'mode' | 'expectedDigest'> {
  /** The environment whose tags go back: its promotion records say where they were. */
  readonly environment: string
}

/**
 * Finds, for each tag, the digest it held before its last promotion into the
 * environment, from the verified promotion record of the digest it holds now,
 * and promotes that digest back: verified again under the current policy,
 * recorded as a rollback.
 */
export async function rollback(request: RollbackRequest, deps: PromoteDependencies & { recordVerifier: ImageVerifier }): Promise<PromotionResult[]> {
  const limit = pLimit(Math.max(1, request.concurrency))
  const targets = await Promise.all(
    request.destinations.map(async (ref) => {
      const where = formatReference(ref)
      if (!ref.tag) throw new PromoteError('INPUT_INVALID', `input "to": ${where} names no tag; rollback moves tags back`)
      const repository = deps.repository(ref)
      deps.declareAccess?.(ref, 'push')
      const current = await repository.resolveTag(ref.tag)
      if (!current) throw new PromoteError('MANIFEST_UNKNOWN', `${where} does not exist; there is nothing to roll back`)
      const root = await repository.fetchManifest(current)
      if (!root) throw new PromoteError('MANIFEST_UNKNOWN', `${where} points at ${current}, which ${repository.name} does not have`)
      const listing = await findAttachments(repository, [current], limit)
      let record
      try {
        record = await checkPromotionGate({ environment: request.environment, verifier: deps.recordVerifier, repository, listing, root })
      } catch (error) {
        throw new PromoteError('PROMOTION_GATE', `cannot roll back ${where}: ${errorMessage(error)}`, { cause: error })
      }
      const predicate = record.predicate as Partial<PromotionPredicate>
      const entry = predicate.destinations?.find((d) => d.reference === where)
      if (!entry) throw new PromoteError('PROMOTION_GATE', `the "${request.environment}" record of ${current} does not name ${where}, so it cannot say what ${where} held before`)
      if (!entry.previousDigest) throw new PromoteError('NOT_PROMOTED', `${where} was created by the promotion of ${current}; there is no earlier digest to roll back to`)
      return { ref, previous: entry.previousDigest }
    })
  )
  // One promotion per earlier digest: each is resolved, verified and recorded like any other.
  const byDigest = new Map<string, Reference[]>()
  for (const t of targets) byDigest.set(t.previous, [...(byDigest.get(t.previous) ?? []), t.ref])
  const results: PromotionResult[] = []
  for (const [digest, refs] of byDigest) {
    const first = refs[0]!
    const source = { ...first, digest } as Reference
    delete (source as { tag?: string }).tag
    results.push(await promote({ ...request, source, destinations: refs, mode: 'promote' }, deps))
  }
  return results
}
