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
  /** `index`: the promoted digest must be signed; `all`: every platform manifest of an index too. */
  readonly signedPlatforms: 'index' | 'all'
}

function escapeRegExp(text: string): string {
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
