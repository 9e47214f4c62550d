import type { AttachmentListing } from './oci/attachments.js'
import { PromoteError, errorMessage } from './errors.js'
import type { Manifest } from './oci/manifest.js'
import type { Repository } from './oci/repository.js'
import { PREDICATE_TYPE_ANNOTATION, PROMOTION_PREDICATE_TYPE, readPromotionRecord, type PromotionRecord } from './records.js'
import { untrusted } from './untrusted.js'
import type { ImageVerifier, VerifiedSignature } from './verify/index.js'

export interface RecordLookup {
  readonly environment: string
  readonly verifier: ImageVerifier
  readonly repository: Repository
  readonly listing: AttachmentListing
  readonly root: Manifest
}

/**
 * `require-environment`: the digest must carry a promotion record for that
 * environment, signed under the promotion policy and about this very digest.
 * Returns the latest record that opened the gate.
 */
export async function checkPromotionGate(input: RecordLookup): Promise<PromotionRecord> {
  return (await environmentRecords(input))[0]!
}

/**
 * Every verified, well-formed promotion record of the environment on the
 * digest, newest first (after a rollback, a digest carries both its first
 * promotion and the rollback). Throws PROMOTION_GATE, saying why, when there
 * is none.
 */
export async function environmentRecords(input: RecordLookup): Promise<PromotionRecord[]> {
  const { environment, repository, root } = input
  const where = `${repository.name}@${root.digest}`
  const records = recordAttachments(input.listing, root.digest)
  if (records.length === 0) {
    throw new PromoteError(
      'PROMOTION_GATE',
      `${where} carries no promotion record, and require-environment asks for one from "${environment}": promote this digest to ${environment} first (with attest-promotion), then promote from there. Nothing was promoted`
    )
  }
  let verified: VerifiedSignature[]
  try {
    verified = await input.verifier.verifyImage({ repository, attachments: { ...input.listing, attachments: records }, subjects: [root.digest], root })
  } catch (error) {
    throw new PromoteError(
      'PROMOTION_GATE',
      `no promotion record on ${where} verifies under the promotion policy, so the "${environment}" gate stays closed: ${errorMessage(error)}`,
      { cause: error }
    )
  }
  const read = verified.map(readPromotionRecord).filter((r): r is PromotionRecord => r !== undefined)
  // ISO 8601 UTC times sort as text.
  const matches = read.filter((r) => r.predicate.environment === environment).sort((a, b) => b.predicate.promotedAt.localeCompare(a.predicate.promotedAt))
  if (matches.length === 0) {
    const found = [...new Set(read.map((r) => untrusted(r.predicate.environment)))]
    const malformed = verified.length - read.length
    const what = [
      ...(found.length ? [`verified promotion records for ${found.join(', ')}`] : []),
      ...(malformed ? [`${malformed} verified record(s) that are not well-formed promotion records`] : [])
    ].join(' and ')
    throw new PromoteError('PROMOTION_GATE', `${where} has ${what}, none for "${environment}", which require-environment asks for. Nothing was promoted`)
  }
  return matches
}

/** The referrers of `digest` that say they are promotion records (what they are is for verification to tell). */
function recordAttachments(listing: AttachmentListing, digest: string): AttachmentListing['attachments'] {
  return listing.attachments.filter(
    (a) => a.kind === 'referrer' && a.subject === digest && a.content.annotations?.[PREDICATE_TYPE_ANNOTATION] === PROMOTION_PREDICATE_TYPE
  )
}

/**
 * Every promotion record on the digest that verifies under the policy and is well formed, whatever its
 * environment; none is an empty list, not an error (prune reads history where there is some).
 */
export async function verifiedRecords(input: Omit<RecordLookup, 'environment'>): Promise<PromotionRecord[]> {
  const records = recordAttachments(input.listing, input.root.digest)
  if (records.length === 0) return []
  try {
    const verified = await input.verifier.verifyImage({
      repository: input.repository,
      attachments: { ...input.listing, attachments: records },
      subjects: [input.root.digest],
      root: input.root
    })
    return verified.map(readPromotionRecord).filter((r): r is PromotionRecord => r !== undefined)
  } catch {
    return []
  }
}
