import type { KeyObject } from 'node:crypto'

/** GitHub Actions' OIDC issuer: the default, as in `gh attestation verify`. */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com'

export interface IdentityPolicy {
  /** Always anchored: matched against the whole certificate SAN. */
  readonly pattern: RegExp
  /** As the user wrote it, for messages. */
  readonly description: string
}

export interface SignaturePolicy {
  /** Cosign `--key` semantics: a signature made with one of these keys passes. */
  readonly publicKeys: readonly KeyObject[]
  /** Keyless: a Fulcio certificate whose SAN matches and whose issuer equals `issuer`. */
  readonly identity?: IdentityPolicy
  readonly issuer: string
  /** Also require a verified in-toto attestation of this predicate type about the digest. */
  readonly attestationType?: string
  /**
   * The in-toto predicate types that count as a signature of the digest.
   * Simple-signing and message signatures always do; an attestation only
   * when its type is listed (see signaturePredicateTypes). `any`: a bundle
   * about an artifact, as `verify-bundle` checks it, whatever its predicate.
   */
  readonly predicateTypes: readonly string[] | 'any'
  /** `index`: the promoted digest must be signed; `all`: every platform manifest of an index too. */
  readonly signedPlatforms: 'index' | 'all'
  /** Keyless: what the certificate's Fulcio extensions must say (GitHub's source repository, signer workflow, ...). */
  readonly claims?: readonly CertificateClaim[]
  /** CEL expressions every one of which must hold for at least one verified attestation of `attestationType`. */
  readonly attestationPolicy?: readonly string[]
}

/**
 * One Fulcio certificate extension a keyless signature must carry, with the value it must have:
 * https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md. A missing extension fails the claim.
 */
export interface CertificateClaim {
  /** The input that asked for it (source-repository), for messages and the verified output. */
  readonly name: string
  readonly oid: string
  /** What the extension is called in Fulcio's list, for messages. */
  readonly extension: string
  readonly match: IdentityPolicy
}

/** Fulcio's extensions (1.3.6.1.4.1.57264.1.*) that GitHub Actions certificates carry, by what they say. */
export const FULCIO_EXTENSIONS = {
  buildSignerUri: { oid: '1.3.6.1.4.1.57264.1.9', extension: 'Build Signer URI' },
  buildSignerDigest: { oid: '1.3.6.1.4.1.57264.1.10', extension: 'Build Signer Digest' },
  runnerEnvironment: { oid: '1.3.6.1.4.1.57264.1.11', extension: 'Runner Environment' },
  sourceRepositoryUri: { oid: '1.3.6.1.4.1.57264.1.12', extension: 'Source Repository URI' },
  sourceRepositoryDigest: { oid: '1.3.6.1.4.1.57264.1.13', extension: 'Source Repository Digest' },
  sourceRepositoryRef: { oid: '1.3.6.1.4.1.57264.1.14', extension: 'Source Repository Ref' },
  sourceRepositoryOwnerUri: { oid: '1.3.6.1.4.1.57264.1.16', extension: 'Source Repository Owner URI' },
  buildTrigger: { oid: '1.3.6.1.4.1.57264.1.20', extension: 'Build Trigger' }
} as const

/** cosign v3 signs an image as an in-toto statement of this type (`cosign sign` with the new bundle format). */
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1'
/** SLSA provenance v1: what actions/attest-build-provenance signs, and what `gh attestation verify` accepts by default. */
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1'

/**
 * What says "built and signed by", as `cosign verify` (its sign predicate)
 * and `gh attestation verify` (SLSA provenance v1 by default, or the
 * `--predicate-type` asked for) read it; plus the type the policy requires.
 * Any other attestation (an SBOM, a scan, a promotion record that says only
 * "moved by") is a fact about the image, never its signature.
 */
export function signaturePredicateTypes(attestationType?: string): string[] {
  return [...new Set([COSIGN_SIGN_PREDICATE_TYPE, SLSA_PROVENANCE_V1, ...(attestationType ? [attestationType] : [])])]
}

/** The text as a regular expression that matches it literally. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** An exact identity: `https://github.com/acme/app/...@refs/heads/main` and nothing longer. */
export function exactIdentity(identity: string): IdentityPolicy {
  return { pattern: new RegExp(`^${escapeRegExp(identity)}$`), description: identity }
}

/**
 * A regular expression always matched against the whole SAN, so
 * `https://github.com/acme/app/.*` cannot accept `https://github.com/acme/app-evil/...`
 * by matching a prefix (sigstore-js treats the policy as an unanchored regex).
 */
export function identityRegexp(source: string): IdentityPolicy {
  return { pattern: new RegExp(`^(?:${source})$`), description: `/${source}/` }
}
