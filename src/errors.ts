/**
 * Every failure oci-promote reports carries a stable code (for tests, logs and
 * scripts) and, where one exists, the lower-level cause.
 */
export type ErrorCode =
  | 'INPUT_INVALID'
  | 'REFERENCE_INVALID'
  | 'DIGEST_MISMATCH'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_TOO_LARGE'
  | 'BLOB_UNKNOWN'
  | 'BLOB_MISMATCH'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'REGISTRY_ERROR'
  | 'NETWORK'
  | 'TIMEOUT'
  | 'REDIRECT_REFUSED'
  | 'REALM_REFUSED'
  | 'CREDENTIALS'
  | 'LAYOUT_INVALID'
  | 'IMMUTABLE_TAG'
  | 'NOT_PROMOTED'
  | 'READBACK_MISMATCH'
  | 'SIGNATURE_POLICY_MISSING'
  | 'SIGNATURE_NOT_VERIFIED'
  | 'PROMOTION_GATE'
  | 'DELETION_REFUSED'

export interface PromoteErrorOptions {
  cause?: unknown
  /** A fault that may pass: the same request can be tried again. */
  transient?: boolean
}

export class PromoteError extends Error {
  readonly code: ErrorCode
  readonly transient: boolean

  constructor(code: ErrorCode, message: string, options: PromoteErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'PromoteError'
    this.code = code
    this.transient = options.transient ?? false
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The code of one of our errors; anything else (a library's, the network's) counts as the registry's fault. */
export function errorCode(error: unknown): ErrorCode {
  return error instanceof PromoteError ? error.code : 'REGISTRY_ERROR'
}

/** How a failed run says why: the code first, as scripts and searches key on it ("SIGNATURE_NOT_VERIFIED: …"). */
export function failureMessage(error: unknown): string {
  return error instanceof PromoteError ? `${error.code}: ${error.message}` : errorMessage(error)
}
