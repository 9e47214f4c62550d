import type { AttachmentListing } from '../oci/attachments.js'
import pLimit from 'p-limit'
import { PromoteError } from '../errors.js'
import { untrusted } from '../untrusted.js'
import type { Repository } from '../oci/repository.js'
import { sha256Digest } from '../oci/digest.js'
import { evidenceFromAttachments, evidenceFromBundles, type EvidenceBatch } from './evidence.js'
import type { SignaturePolicy } from './policy.js'
import { TrustRoot, type TrustOptions } from './trust.js'
import type { AttestationRule } from './cel.js'
import { NotVerified, SignatureVerifier, type VerifiedSignature } from './verifier.js'

export interface ImageVerificationInput {
  readonly verifier: SignatureVerifier
  readonly repository: Repository
  readonly attachments: AttachmentListing
  /** Digests that must each carry a signature satisfying the policy. */
  readonly subjects: readonly string[]
  /** The digest being promoted; an attestation-type requirement applies to it. */
  readonly root: { readonly digest: string; readonly bytes: Buffer }
  /** Evidence from outside the registry (GitHub attestations), per subject, read on demand like the rest. */
  readonly externalEvidence?: (subject: string) => Promise<EvidenceBatch[]>
}

function looked(input: ImageVerificationInput, subject: string): string {
  const via = input.attachments.referrersVia[subject]
  const tag = `the referrers fallback tag ${subject.replace(':', '-')}`
  const referrers = via === 'api' || via === 'api+tag' ? `the referrers API and ${tag}` : tag
  return `cosign tags ${subject.replace(':', '-')}.sig/.att, ${referrers}${input.externalEvidence ? ', and GitHub artifact attestations' : ''}`
}

// Small evidence (payloads, key-signed envelopes) is read and verified side by side; large blobs one at a time.
const LARGE_EVIDENCE_BYTES = 1024 * 1024
const SMALL_CONCURRENCY = 8

/**
 * A policy passes for a digest when at least one signature or attestation
 * about it verifies; anything malformed or unverifiable counts as nothing.
 * Evidence is read on demand, verified, and dropped: memory holds a few
 * blobs at a time whatever the registry lists. Throws, saying what was found
 * and why each failed, when a digest has none.
 */
export async function verifyImage(input: ImageVerificationInput): Promise<VerifiedSignature[]> {
  const fromAttachments = evidenceFromAttachments(input.repository, input.attachments.attachments)
  const small = pLimit(SMALL_CONCURRENCY)
  const large = pLimit(1)
  const verified: VerifiedSignature[] = []
  const failures: string[] = []
  for (const subject of input.subjects) {
    const manifest = subject === input.root.digest ? input.root.bytes : undefined
    const batches = [...fromAttachments.batches.filter((b) => b.subject === subject), ...((await input.externalEvidence?.(subject)) ?? [])]
    const outcomes = (
      await Promise.all(
        batches.map((batch) =>
          (batch.bytes > LARGE_EVIDENCE_BYTES ? large : small)(async () =>
            Promise.allSettled((await batch.read()).map((evidence) => input.verifier.verify(evidence, manifest)))
          )
        )
      )
    ).flat()
    const passed = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []))
    const reasons = outcomes.flatMap((o) =>
      o.status === 'rejected' ? [o.reason instanceof NotVerified ? `${o.reason.source}: ${o.reason.message}` : untrusted(String(o.reason))] : []
    )
    verified.push(...passed)
    if (outcomes.length === 0) {
      failures.push(`${input.repository.name}@${subject}: no signature or attestation found (looked at ${looked(input, subject)})`)
    } else if (passed.length === 0) {
      failures.push(`${input.repository.name}@${subject}: ${outcomes.length} found, none verifies:\n${reasons.map((r) => `  - ${r}`).join('\n')}`)
    }
  }
  const wanted = input.verifier.policy.attestationType
  if (failures.length === 0 && wanted && !verified.some((v) => v.subject === input.root.digest && v.predicateType === wanted)) {
    const types = [...new Set(verified.filter((v) => v.predicateType).map((v) => untrusted(v.predicateType)))]
    failures.push(
      `${input.repository.name}@${input.root.digest}: no verified attestation of type ${wanted}${types.length ? ` (verified types: ${types.join(', ')})` : ''}`
    )
  }
  if (failures.length > 0) {
    const notes = [...input.attachments.notes, ...fromAttachments.notes]
    const listed = notes.length ? `\nNotes:\n${notes.map((n) => `  - ${n}`).join('\n')}` : ''
    throw new PromoteError(
      'SIGNATURE_NOT_VERIFIED',
      `signature policy not satisfied (${input.verifier.describePolicy()}); nothing was promoted.\n${failures.join('\n')}${listed}`
    )
  }
  return verified
}

/** A signature policy bound to its trust material, as promotion uses it. */
export class ImageVerifier {
  constructor(
    readonly signatures: SignatureVerifier,
    /** attestation-policy, compiled: see cel.ts. */
    readonly rules: readonly AttestationRule[] = []
  ) {}

  get policy(): SignaturePolicy {
    return this.signatures.policy
  }

  async verifyImage(input: Omit<ImageVerificationInput, 'verifier'>): Promise<VerifiedSignature[]> {
    const verified = await verifyImage({ ...input, verifier: this.signatures })
    const type = this.policy.attestationType
    if (this.rules.length === 0 || !type) return verified
    // The facts an attestation states must hold too: for at least one verified attestation of the type, every rule.
    const { checkAttestationPolicy } = await import('./cel.js')
    const about = verified.filter((v) => v.subject === input.root.digest)
    checkAttestationPolicy(this.rules, about, type, `${input.repository.name}@${input.root.digest}`)
    return verified
  }
}

/**
 * One Sigstore bundle about a file, as the Sigstore conformance suite's
 * `verify-bundle` checks it: the bundle's message digest or statement subject
 * must be the artifact's sha256, under the policy and trust given.
 */
export async function verifyArtifactBundle(input: {
  readonly bundle: unknown
  readonly artifact?: Buffer
  readonly digest?: string
  readonly policy: SignaturePolicy
  readonly trust: TrustOptions
}): Promise<VerifiedSignature> {
  const subject = input.artifact ? sha256Digest(input.artifact) : input.digest
  if (!subject) throw new PromoteError('INPUT_INVALID', 'verify-bundle needs the artifact or its sha256 digest')
  const [evidence] = evidenceFromBundles('sigstore-bundle', subject, 'bundle', [input.bundle])
  return new SignatureVerifier(input.policy, new TrustRoot(input.trust)).verify(evidence!, input.artifact)
}

/** Compiles the attestation-policy now, so an expression that does not compile fails before any request. */
export async function createImageVerifier(policy: SignaturePolicy, trust: TrustOptions): Promise<ImageVerifier> {
  const rules = policy.attestationPolicy?.length ? (await import('./cel.js')).compileAttestationPolicy(policy.attestationPolicy) : []
  return new ImageVerifier(new SignatureVerifier(policy, new TrustRoot(trust)), rules)
}

export type { VerifiedSignature } from './verifier.js'
export type { Evidence, EvidenceBatch } from './evidence.js'
