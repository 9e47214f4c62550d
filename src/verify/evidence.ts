import { bundleFromJSON, type Bundle } from '@sigstore/bundle'
import type { Attachment } from '../attachments.js'
import { errorMessage } from '../errors.js'
import { readBlob } from '../oci/referrers.js'
import type { Repository } from '../oci/repository.js'
import { DSSE_ENVELOPE_MEDIA_TYPE, SIMPLE_SIGNING_MEDIA_TYPE, legacyAttestationBundle, legacySignatureBundle } from './cosign.js'

export type EvidenceFormat = 'cosign-signature' | 'cosign-attestation' | 'sigstore-bundle' | 'github-attestation'

/** One signature or attestation found for a digest, ready to verify, or the reason it cannot be read. */
export interface Evidence {
  readonly format: EvidenceFormat
  /** The digest it was found for. */
  readonly subject: string
  /** Where it was found, for the summary and for errors. */
  readonly source: string
  readonly bundle?: Bundle
  /** The signed bytes of a legacy simple-signing signature. */
  readonly payload?: Buffer
  readonly problem?: string
}

// Payloads are a few hundred bytes and envelopes a few KiB; anything near these limits is not a signature.
const MAX_PAYLOAD_BYTES = 1024 * 1024
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024
export const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle'

/** Why a bundle cannot be read, keeping the offending fields @sigstore/bundle lists. */
function unreadable(error: unknown): string {
  const fields = (error as { fields?: unknown }).fields
  const listed = Array.isArray(fields) && fields.length ? ` (${fields.map(String).join(', ')})` : ''
  return `cannot be read: ${errorMessage(error)}${listed}`
}

async function attempt(base: Omit<Evidence, 'bundle' | 'payload' | 'problem'>, read: () => Promise<Pick<Evidence, 'bundle' | 'payload'>>): Promise<Evidence> {
  try {
    return { ...base, ...(await read()) }
  } catch (error) {
    // Anything malformed counts as unverified, never as a crash.
    return { ...base, problem: unreadable(error) }
  }
}

/** Turns what is attached to an image into verifiable evidence; SBOMs and other artifacts are skipped. */
export async function evidenceFromAttachments(repository: Repository, attachments: readonly Attachment[]): Promise<Evidence[]> {
  const found: Promise<Evidence>[] = []
  for (const attachment of attachments) {
    const layers = attachment.content.blobs.slice(1)
    if (attachment.kind === 'sig' || attachment.kind === 'att') {
      layers.forEach((layer, i) => {
        const source = `${repository.name}:${attachment.reference} layer ${i + 1}`
        if (attachment.kind === 'sig' && layer.mediaType === SIMPLE_SIGNING_MEDIA_TYPE) {
          found.push(attempt({ format: 'cosign-signature', subject: attachment.subject, source }, async () => ({
            bundle: legacySignatureBundle(layer),
            payload: await readBlob(repository, layer, MAX_PAYLOAD_BYTES)
          })))
        } else if (attachment.kind === 'att' && layer.mediaType === DSSE_ENVELOPE_MEDIA_TYPE) {
          found.push(attempt({ format: 'cosign-attestation', subject: attachment.subject, source }, async () => ({
            bundle: legacyAttestationBundle(layer, await readBlob(repository, layer, MAX_BUNDLE_BYTES))
          })))
        }
      })
    } else if (attachment.kind === 'referrer') {
      const artifactType = attachment.content.artifactType ?? attachment.descriptor.artifactType ?? ''
      const layer = layers[0]
      if (!artifactType.startsWith(SIGSTORE_BUNDLE_PREFIX) || !layer) continue
      const source = `${repository.name}@${attachment.reference} (referrer)`
      found.push(attempt({ format: 'sigstore-bundle', subject: attachment.subject, source }, async () => {
        if (!layer.mediaType.startsWith(SIGSTORE_BUNDLE_PREFIX)) throw new Error(`its layer is ${layer.mediaType}, not a Sigstore bundle`)
        const json: unknown = JSON.parse((await readBlob(repository, layer, MAX_BUNDLE_BYTES)).toString('utf8'))
        return { bundle: bundleFromJSON(json) }
      }))
    }
  }
  return Promise.all(found)
}

/** Sigstore bundles from the GitHub attestations API, as evidence for `subject`. */
export function evidenceFromBundles(format: EvidenceFormat, subject: string, source: string, bundles: readonly unknown[]): Evidence[] {
  return bundles.map((json, i) => {
    const base = { format, subject, source: bundles.length > 1 ? `${source} #${i + 1}` : source }
    try {
      return { ...base, bundle: bundleFromJSON(json) }
    } catch (error) {
      return { ...base, problem: unreadable(error) }
    }
  })
}
