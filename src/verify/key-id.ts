import { createHash, type KeyObject } from 'node:crypto'

/** `sha256:` of a public key's SPKI: how keys are named in outputs and bundle hints. */
export function keyId(key: KeyObject): string {
  return `sha256:${createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`
}
