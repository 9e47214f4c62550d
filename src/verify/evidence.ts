import { bundleFromJSON, type Bundle } from '@sigstore/bundle'
import type { Attachment } from '../oci/attachments.js'
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
/**
 * What one signature manifest (a `.sig` or `.att` tag, a referrer) may make
 * us read and verify. Anyone who can push can list the same 16 MiB blob four
 * hundred times in a 64 KB manifest: identical layers count once, the rest
 * past these bounds are skipped with a note.
 */
export const MAX_LAYERS_PER_MANIFEST = 64
export const MAX_BYTES_PER_MANIFEST = 48 * 1024 * 1024
export const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle'

/**
 * Evidence read on demand: the blob it needs is fetched once, turned into
 * one or more pieces of evidence (one per distinct set of annotations), and
 * dropped once they are verified, so memory holds a few blobs at a time
 * whatever a manifest lists.
 */
export interface EvidenceBatch {
  readonly subject: string
  /** The bytes reading it costs, for scheduling: large batches are read one at a time. */
  readonly bytes: number
  read(): Promise<Evidence[]>
}

export interface AttachmentEvidence {
  readonly batches: readonly EvidenceBatch[]
  /** Layers passed over for the bounds above. */
  readonly notes: readonly string[]
}

/** Why a bundle cannot be read, keeping the offending fields @sigstore/bundle lists. */
function unreadable(error: unknown): string {
  const fields = (error as { fields?: unknown }).fields
  const listed = Array.isArray(fields) && fields.length ? ` (${fields.map(String).join(', ')})` : ''
  return `cannot be read: ${errorMessage(error)}${listed}`
}

function attempt(base: Omit<Evidence, 'bundle' | 'payload' | 'problem'>, read: () => Pick<Evidence, 'bundle' | 'payload'>): Evidence {
  try {
    return { ...base, ...read() }
  } catch (error) {
    // Anything malformed counts as unverified, never as a crash.
    return { ...base, problem: unreadable(error) }
  }
}

function failed(base: Omit<Evidence, 'bundle' | 'payload' | 'problem'>, error: unknown): Evidence {
  return { ...base, problem: unreadable(error) }
}

/** The `.sig`/`.att` layers of one manifest as batches: one blob read per digest, within the bounds. */
function legacyBatches(repository: Repository, attachment: Attachment, notes: string[]): EvidenceBatch[] {
  const kind = attachment.kind as 'sig' | 'att'
  const mediaType = kind === 'sig' ? SIMPLE_SIGNING_MEDIA_TYPE : DSSE_ENVELOPE_MEDIA_TYPE
  const format: EvidenceFormat = kind === 'sig' ? 'cosign-signature' : 'cosign-attestation'
  const all = attachment.content.blobs.slice(1).map((layer, i) => ({ layer, source: `${repository.name}:${attachment.reference} layer ${i + 1}` }))
  // The same signature twice (same blob, same annotations) is one.
  const seen = new Set<string>()
  let layers = all.filter(({ layer }) => {
    const key = `${layer.digest} ${JSON.stringify(layer.annotations ?? {})}`
    if (layer.mediaType !== mediaType || seen.has(key)) return false
    seen.add(key)
    return true
  })
  if (layers.length > MAX_LAYERS_PER_MANIFEST) {
    notes.push(
      `${repository.name}:${attachment.reference} lists ${layers.length} distinct signature layers; only the first ${MAX_LAYERS_PER_MANIFEST} were read`
    )
    layers = layers.slice(0, MAX_LAYERS_PER_MANIFEST)
  }
  const byDigest = new Map<string, typeof layers>()
  for (const entry of layers) byDigest.set(entry.layer.digest, [...(byDigest.get(entry.layer.digest) ?? []), entry])
  const batches: EvidenceBatch[] = []
  let budget = MAX_BYTES_PER_MANIFEST
  for (const group of byDigest.values()) {
    const descriptor = group[0]!.layer
    if (descriptor.size > budget) {
      notes.push(
        `${repository.name}:${attachment.reference}: layers of ${descriptor.digest} and after were not read; one signature manifest may make oci-promote read at most ${MAX_BYTES_PER_MANIFEST} bytes`
      )
      break
    }
    budget -= descriptor.size
    batches.push({
      subject: attachment.subject,
      bytes: descriptor.size,
      read: async () => {
        let blob: Buffer
        try {
          blob = await readBlob(repository, descriptor, kind === 'sig' ? MAX_PAYLOAD_BYTES : MAX_BUNDLE_BYTES)
        } catch (error) {
          return group.map(({ source }) => failed({ format, subject: attachment.subject, source }, error))
        }
        return group.map(({ layer, source }) =>
          attempt({ format, subject: attachment.subject, source }, () =>
            kind === 'sig' ? { bundle: legacySignatureBundle(layer), payload: blob } : { bundle: legacyAttestationBundle(layer, blob) }
          )
        )
      }
    })
  }
  return batches
}

/** Turns what is attached to an image into evidence to read on demand; SBOMs and other artifacts are skipped. */
export function evidenceFromAttachments(repository: Repository, attachments: readonly Attachment[]): AttachmentEvidence {
  const notes: string[] = []
  const batches: EvidenceBatch[] = []
  for (const attachment of attachments) {
    if (attachment.kind === 'sig' || attachment.kind === 'att') {
      batches.push(...legacyBatches(repository, attachment, notes))
    } else if (attachment.kind === 'referrer') {
      const artifactType = attachment.content.artifactType ?? attachment.descriptor.artifactType ?? ''
      const layer = attachment.content.blobs[1]
      if (!artifactType.startsWith(SIGSTORE_BUNDLE_PREFIX) || !layer) continue
      const base = { format: 'sigstore-bundle' as const, subject: attachment.subject, source: `${repository.name}@${attachment.reference} (referrer)` }
      batches.push({
        subject: attachment.subject,
        bytes: layer.size,
        read: async () => {
          try {
            if (!layer.mediaType.startsWith(SIGSTORE_BUNDLE_PREFIX)) throw new Error(`its layer is ${layer.mediaType}, not a Sigstore bundle`)
            const json: unknown = JSON.parse((await readBlob(repository, layer, MAX_BUNDLE_BYTES)).toString('utf8'))
            return [attempt(base, () => ({ bundle: bundleFromJSON(json) }))]
          } catch (error) {
            return [failed(base, error)]
          }
        }
      })
    }
  }
  return { batches, notes }
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
