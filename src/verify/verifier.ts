import type { KeyObject } from 'node:crypto'
import { keyId } from './key-id.js'
import type { Bundle } from '@sigstore/bundle'
import type { TrustedRoot } from '@sigstore/protobuf-specs'
import { Verifier, toSignedEntity, toTrustMaterial, type Signer } from '@sigstore/verify'
import { errorMessage } from '../errors.js'
import { untrusted } from '../untrusted.js'
import { checkChainHasNoRoot, checkClaims, checkIdentityBytes, checkLogEntriesName, leafCertificate, verifiedLogIndex } from './material.js'
import { SIMPLE_SIGNING_TYPE } from './cosign.js'
import type { Evidence, EvidenceFormat } from './evidence.js'
import type { SignaturePolicy } from './policy.js'
import { TrustRoot } from './trust.js'

const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'
const MAX_KEPT_STATEMENT_BYTES = 256 * 1024

/** One signature or attestation that satisfied the policy: what the `verified` output lists. */
export interface VerifiedSignature {
  readonly format: EvidenceFormat
  readonly subject: string
  readonly source: string
  /** Keyless: the certificate SAN. */
  readonly identity?: string
  readonly issuer?: string
  /** Key-based: `sha256:` of the public key's SPKI. */
  readonly keyId?: string
  readonly predicateType?: string
  readonly logIndex?: string
  /** The attestation's predicate, once verified (promotion records are read from it). */
  readonly predicate?: unknown
  /** The in-toto statement's subject and predicate, once verified and when at most 256 KiB (attestation-policy reads them). */
  readonly statement?: { readonly subject: unknown; readonly predicate: unknown }
  /** Keyless: the certificate claims the policy asked for, with the values they had (source-repository: https://github.com/acme/app). */
  readonly claims?: Readonly<Record<string, string>>
}

/** Why one piece of evidence did not verify: one line, its hostile parts already escaped. */
export class NotVerified extends Error {
  constructor(
    readonly source: string,
    reason: string
  ) {
    super(untrusted(reason, 2048))
    this.name = 'NotVerified'
  }
}

interface Binding {
  readonly predicateType?: string
  readonly predicate?: unknown
  readonly statement?: { readonly subject: unknown; readonly predicate: unknown }
}

/** The bytes a message signature covers: cosign's simple-signing payload, or the manifest itself. */
function signedArtifact(evidence: Evidence, bundle: Bundle, subjectManifest: Buffer | undefined): Buffer | undefined {
  if (bundle.content.$case === 'dsseEnvelope') return undefined
  if (evidence.format === 'cosign-signature') {
    if (!evidence.payload) throw new Error('its payload is missing')
    return evidence.payload
  }
  const signed = bundle.content.messageSignature.messageDigest?.digest.toString('hex')
  // A bundle signing a message directly binds the image only if that message is the manifest itself.
  if (signed !== evidence.subject.slice('sha256:'.length)) throw new Error(`it signs a message with digest ${signed ?? 'unknown'}, not ${evidence.subject}`)
  if (!subjectManifest) throw new Error('it signs a message, and checking a message signature needs the signed bytes themselves, not only their digest')
  return subjectManifest
}

/**
 * What @sigstore/verify leaves to the caller: that the signed content names
 * this very digest, so a signature of another image replayed here fails, and
 * that an attestation is of a type the policy takes as a signature of the
 * image (a promotion record or an SBOM signed by the trusted identity is not).
 */
function checkBinding(evidence: Evidence, bundle: Bundle, predicateTypes: SignaturePolicy['predicateTypes']): Binding {
  const hex = evidence.subject.slice('sha256:'.length)
  if (bundle.content.$case === 'dsseEnvelope') {
    const envelope = bundle.content.dsseEnvelope
    if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new Error(`its DSSE payload is ${envelope.payloadType}, not an in-toto statement`)
    const statement = JSON.parse(envelope.payload.toString('utf8')) as {
      subject?: { digest?: Record<string, string> }[]
      predicateType?: unknown
      predicate?: unknown
    }
    const subjects = Array.isArray(statement.subject) ? statement.subject : []
    const named = subjects.some((s) => s?.digest?.['sha256']?.toLowerCase?.() === hex)
    if (!named) {
      const others = subjects
        .map((s) =>
          Object.entries(s?.digest ?? {})
            .map(([a, d]) => `${a}:${String(d)}`)
            .join(',')
        )
        .join('; ')
      throw new Error(`its statement is about ${others || 'nothing'}, not ${evidence.subject}`)
    }
    const predicateType = typeof statement.predicateType === 'string' ? statement.predicateType : undefined
    if (predicateTypes !== 'any' && (!predicateType || !predicateTypes.includes(predicateType))) {
      throw new Error(
        `it is an attestation of type ${predicateType ?? '(none)'}, which this policy does not take as a signature of the image (accepted: ${predicateTypes.join(', ')})`
      )
    }
    // A predicate is kept for what reads it later (promotion records); a large one is dropped once checked.
    const kept = envelope.payload.length <= MAX_KEPT_STATEMENT_BYTES
    return {
      ...(predicateType ? { predicateType } : {}),
      ...(kept ? { predicate: statement.predicate, statement: { subject: statement.subject, predicate: statement.predicate } } : {})
    }
  }
  if (evidence.format === 'cosign-signature') {
    const simple = JSON.parse(evidence.payload!.toString('utf8')) as { critical?: { type?: unknown; image?: Record<string, unknown> } }
    const type = simple.critical?.type
    if (typeof type !== 'string' || type.toLowerCase() !== SIMPLE_SIGNING_TYPE)
      throw new Error(`its payload type is ${type === undefined ? 'missing' : JSON.stringify(type)}, not "${SIMPLE_SIGNING_TYPE}"`)
    const signed = simple.critical?.image?.['docker-manifest-digest']
    if (signed !== evidence.subject) throw new Error(`it signs ${typeof signed === 'string' ? signed : 'no digest'}, not ${evidence.subject}`)
  }
  return {}
}

function describeFailure(error: unknown): string {
  const code = (error as { code?: unknown }).code
  const message = errorMessage(error)
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message
}

/**
 * Runs @sigstore/verify. Its VerificationErrors (with a code) say why a
 * signature fails; anything else it throws (a TypeError on a bundle it did not
 * expect) is reported as what it means for the user.
 */
function library<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    if (typeof (error as { code?: unknown }).code === 'string') throw error
    throw new Error(`this bundle cannot be verified: ${errorMessage(error)}`, { cause: error })
  }
}

/** Verifies evidence against a policy with @sigstore/verify, plus the checks the library leaves to us. */
export class SignatureVerifier {
  constructor(
    readonly policy: SignaturePolicy,
    readonly trust: TrustRoot
  ) {}

  describePolicy(): string {
    const parts: string[] = []
    if (this.policy.identity) parts.push(`keyless identity ${this.policy.identity.description} issued by ${this.policy.issuer}`)
    for (const key of this.policy.publicKeys) parts.push(`key ${keyId(key).slice(0, 19)}…`)
    return parts.join(' or ')
  }

  async #withKeys(bundle: Bundle, artifact: Buffer | undefined): Promise<{ signer: Signer; key: KeyObject }> {
    if (this.policy.publicKeys.length === 0) throw new Error('it is signed with a key, and the policy names no public-key')
    const logged = bundle.verificationMaterial.tlogEntries.length > 0
    // Private setups sign with --tlog-upload=false; an entry that is present is verified too.
    const root: TrustedRoot = logged ? await this.trust.load() : TrustRoot.empty
    const failures: string[] = []
    for (const key of this.policy.publicKeys) {
      const material = toTrustMaterial(root, () => ({ publicKey: key, validFor: () => true }))
      const verifier = new Verifier(material, { tlogThreshold: logged ? 1 : 0, ctlogThreshold: 0, timestampThreshold: logged ? 1 : 0 })
      try {
        const signer = library(() => verifier.verify(toSignedEntity(bundle, artifact)))
        checkLogEntriesName(bundle, key)
        return { signer, key }
      } catch (error) {
        failures.push(describeFailure(error))
      }
    }
    throw new Error(failures.length === 1 ? failures[0]! : failures.join('; '))
  }

  async #keyless(bundle: Bundle, artifact: Buffer | undefined): Promise<{ signer: Signer; claims: Record<string, string> }> {
    const identity = this.policy.identity
    if (!identity) throw new Error('it is a keyless signature, and the policy names no certificate-identity')
    const root = await this.trust.load()
    const leaf = library(() => leafCertificate(bundle))
    if (!leaf) throw new Error('its certificate is missing')
    checkIdentityBytes(leaf)
    checkChainHasNoRoot(bundle, root)
    const verifier = new Verifier(toTrustMaterial(root), {
      tlogThreshold: root.tlogs.length > 0 ? 1 : 0,
      ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0,
      timestampThreshold: 1
    })
    const signer = library(() =>
      verifier.verify(toSignedEntity(bundle, artifact), {
        subjectAlternativeName: identity.pattern,
        extensions: { issuer: this.policy.issuer }
      })
    )
    checkLogEntriesName(bundle, signer.key)
    // After the signature and identity: a forged or foreign certificate is reported as such first.
    return { signer, claims: checkClaims(leaf, this.policy.claims ?? []) }
  }

  /** Resolves with what verified, or rejects with NotVerified saying why. */
  async verify(evidence: Evidence, subjectManifest: Buffer | undefined): Promise<VerifiedSignature> {
    try {
      if (evidence.problem || !evidence.bundle) throw new Error(evidence.problem ?? 'nothing to verify')
      const bundle = evidence.bundle
      const artifact = signedArtifact(evidence, bundle, subjectManifest)
      const keyBased = bundle.verificationMaterial.content.$case === 'publicKey'
      let identity: Pick<VerifiedSignature, 'identity' | 'issuer' | 'keyId' | 'claims'>
      if (keyBased) {
        const { key } = await this.#withKeys(bundle, artifact)
        identity = { keyId: keyId(key) }
      } else {
        const { signer, claims } = await this.#keyless(bundle, artifact)
        identity = {
          ...(signer.identity?.subjectAlternativeName ? { identity: signer.identity.subjectAlternativeName } : {}),
          ...(signer.identity?.extensions?.issuer ? { issuer: signer.identity.extensions.issuer } : {}),
          ...(Object.keys(claims).length ? { claims } : {})
        }
      }
      // Checked after the signature, so a forged signature is reported as such first.
      const binding = checkBinding(evidence, bundle, this.policy.predicateTypes)
      const logIndex = verifiedLogIndex(bundle)
      return {
        format: evidence.format,
        subject: evidence.subject,
        source: evidence.source,
        ...identity,
        ...binding,
        ...(logIndex !== undefined ? { logIndex } : {})
      }
    } catch (error) {
      throw new NotVerified(evidence.source, describeFailure(error))
    }
  }
}
