import type { AttachmentListing } from './attachments.js'
import { PromoteError, errorMessage } from './errors.js'
import type { Manifest } from './oci/manifest.js'
import type { Repository } from './oci/repository.js'
import { PROMOTION_PREDICATE_TYPE } from './records.js'
import { untrusted } from './untrusted.js'
import type { ImageVerifier, VerifiedSignature } from './verify/index.js'

const PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType'

export interface RecordLookup {
  readonly environment: string
  readonly verifier: ImageVerifier
  readonly repository: Repository
  readonly listing: AttachmentListing
  readonly root: Manifest
}

/** When a record says it was made; records compare by it (ISO 8601 UTC sorts as text). */
export function promotedAt(record: VerifiedSignature): string {
  const value = (record.predicate as { promotedAt?: unknown } | undefined)?.promotedAt
  return typeof value === 'string' ? value : ''
}

/**
 * `require-environment`: the digest must carry a promotion record for that
 * environment, signed under the promotion policy and about this very digest.
 * Returns the latest record that opened the gate.
 */
export async function checkPromotionGate(input: RecordLookup): Promise<VerifiedSignature> {
  return (await environmentRecords(input))[0]!
}

/**
 * Every verified promotion record of the environment on the digest, newest
 * first (after a rollback, a digest carries both its first promotion and the
 * rollback). Throws PROMOTION_GATE, saying why, when there is none.
 */
export async function environmentRecords(input: RecordLookup): Promise<VerifiedSignature[]> {
  const { environment, repository, root } = input
  const where = `${repository.name}@${root.digest}`
  const records = input.listing.attachments.filter(
    (a) => a.kind === 'referrer' && a.subject === root.digest && a.content.annotations?.[PREDICATE_ANNOTATION] === PROMOTION_PREDICATE_TYPE
  )
  if (records.length === 0) {
    throw new PromoteError('PROMOTION_GATE', `${where} carries no promotion record, and require-environment asks for one from "${environment}": promote this digest to ${environment} first (with attest-promotion), then promote from there. Nothing was promoted`)
  }
  let verified: VerifiedSignature[]
  try {
    verified = await input.verifier.verifyImage({ repository, attachments: { ...input.listing, attachments: records }, subjects: [root.digest], root })
  } catch (error) {
    throw new PromoteError('PROMOTION_GATE', `no promotion record on ${where} verifies under the promotion policy, so the "${environment}" gate stays closed: ${errorMessage(error)}`, { cause: error })
  }
  const matches = verified
    .filter((v) => v.predicateType === PROMOTION_PREDICATE_TYPE && (v.predicate as { environment?: unknown } | undefined)?.environment === environment)
    .sort((a, b) => promotedAt(b).localeCompare(promotedAt(a)))
  if (matches.length === 0) {
    const found = [...new Set(verified.map((v) => untrusted(String((v.predicate as { environment?: unknown } | undefined)?.environment))))]
    throw new PromoteError('PROMOTION_GATE', `${where} has verified promotion records for ${found.join(', ')}, none for "${environment}", which require-environment asks for. Nothing was promoted`)
  }
  return matches
}
