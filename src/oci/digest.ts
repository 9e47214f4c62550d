import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { PromoteError } from '../errors.js'

export const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/

export function isDigest(value: string): boolean {
  return SHA256_DIGEST.test(value)
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** `sha256:abc…` → `sha256-abc…`, the form cosign and the OCI referrers fallback use in tags. */
export function digestTag(digest: string): string {
  return digest.replace(':', '-')
}

export function shortDigest(digest: string): string {
  return digest.slice(0, 'sha256:'.length + 12)
}

/**
 * A pass-through stream that hashes and counts what flows through it and fails
 * the stream, instead of ending it, when the bytes are not the expected blob.
 */
export class VerifyingStream extends Transform {
  readonly #hash: Hash = createHash('sha256')
  #size = 0

  constructor(
    private readonly expectedDigest: string,
    private readonly expectedSize: number | undefined,
    private readonly label: string
  ) {
    super()
  }

  get bytesSeen(): number {
    return this.#size
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#size += chunk.length
    if (this.expectedSize !== undefined && this.#size > this.expectedSize) {
      callback(new PromoteError('BLOB_MISMATCH', `${this.label}: more than the ${this.expectedSize} bytes its descriptor declares`))
      return
    }
    this.#hash.update(chunk)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    const actual = `sha256:${this.#hash.digest('hex')}`
    if (this.expectedSize !== undefined && this.#size !== this.expectedSize) {
      callback(new PromoteError('BLOB_MISMATCH', `${this.label}: got ${this.#size} bytes, its descriptor declares ${this.expectedSize}`))
    } else if (actual !== this.expectedDigest) {
      callback(new PromoteError('BLOB_MISMATCH', `${this.label}: content hashes to ${actual}, not ${this.expectedDigest}`))
    } else {
      callback()
    }
  }
}
