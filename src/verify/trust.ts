import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TrustedRoot } from '@sigstore/protobuf-specs'
import { getTrustedRoot } from '@sigstore/tuf'
import { PromoteError, errorMessage } from '../errors.js'

export interface TrustOptions {
  /** A Sigstore trusted_root.json: private instances, GitHub's own instance, air-gapped runs. */
  readonly trustedRootPath?: string
  /** Where the TUF client caches the public-good root (RUNNER_TEMP on a runner). */
  readonly tufCachePath?: string
  readonly tufMirrorURL?: string
}

const EMPTY_ROOT = TrustedRoot.fromJSON({
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: []
})

interface RootAuthorities {
  tlogs?: { publicKey?: { validFor?: { start?: unknown } } }[]
  ctlogs?: { publicKey?: { validFor?: { start?: unknown } } }[]
  certificateAuthorities?: { validFor?: { start?: unknown } }[]
  timestampAuthorities?: { validFor?: { start?: unknown } }[]
}

/**
 * Every log, CA and timestamp authority must say from when it is trusted:
 * @sigstore/verify reads a missing start as the epoch, which would trust a
 * key for signatures made before it existed (conformance case
 * trust-root-tlog-missing-validity-start_fail).
 */
function requireValidityStarts(json: unknown): void {
  const root = (json ?? {}) as RootAuthorities
  const missing = [
    ...(root.tlogs ?? []).map((t, i) => [`tlogs[${i}]`, t?.publicKey?.validFor?.start] as const),
    ...(root.ctlogs ?? []).map((t, i) => [`ctlogs[${i}]`, t?.publicKey?.validFor?.start] as const),
    ...(root.certificateAuthorities ?? []).map((c, i) => [`certificateAuthorities[${i}]`, c?.validFor?.start] as const),
    ...(root.timestampAuthorities ?? []).map((c, i) => [`timestampAuthorities[${i}]`, c?.validFor?.start] as const)
  ].filter(([, start]) => typeof start !== 'string' || start === '')
  if (missing.length)
    throw new Error(
      `${missing.map(([where]) => where).join(', ')} ${missing.length === 1 ? 'has' : 'have'} no validFor.start; every authority must say from when it is trusted`
    )
}

/** Loads the trusted root once, and only if a signature needs it (key-only runs without a log need none). */
export class TrustRoot {
  readonly #options: TrustOptions
  #root?: Promise<TrustedRoot>

  constructor(options: TrustOptions) {
    this.#options = options
  }

  static get empty(): TrustedRoot {
    return EMPTY_ROOT
  }

  get source(): string {
    return this.#options.trustedRootPath ? `trusted root ${this.#options.trustedRootPath}` : 'the Sigstore public-good trusted root (TUF)'
  }

  load(): Promise<TrustedRoot> {
    this.#root ??= this.#options.trustedRootPath ? this.#fromFile(this.#options.trustedRootPath) : this.#fromTuf()
    return this.#root
  }

  async #fromFile(path: string): Promise<TrustedRoot> {
    let json: unknown
    try {
      json = JSON.parse(await readFile(path, 'utf8'))
    } catch (error) {
      throw new PromoteError('INPUT_INVALID', `input "trusted-root": cannot read a trusted_root.json from ${path}: ${errorMessage(error)}`, { cause: error })
    }
    try {
      requireValidityStarts(json)
      const root = TrustedRoot.fromJSON(json)
      if (root.certificateAuthorities.length + root.tlogs.length + root.timestampAuthorities.length === 0)
        throw new Error('it lists no certificate authority, transparency log or timestamp authority')
      return root
    } catch (error) {
      throw new PromoteError('INPUT_INVALID', `input "trusted-root": ${path} is not a usable Sigstore trusted root: ${errorMessage(error)}`, { cause: error })
    }
  }

  async #fromTuf(): Promise<TrustedRoot> {
    try {
      return await getTrustedRoot({
        cachePath: this.#options.tufCachePath ?? join(process.env['RUNNER_TEMP'] ?? '.', 'sigstore-tuf'),
        ...(this.#options.tufMirrorURL ? { mirrorURL: this.#options.tufMirrorURL } : {}),
        retry: { retries: 2 },
        timeout: 10_000
      })
    } catch (error) {
      throw new PromoteError(
        'NETWORK',
        `could not refresh the Sigstore public-good trusted root over TUF (${errorMessage(error)}). On runners without access to tuf-repo-cdn.sigstore.dev, pass a trusted_root.json with the trusted-root input`,
        { cause: error }
      )
    }
  }
}
