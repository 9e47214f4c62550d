// Carrying signatures, attestations and other referrers to another repository, beside the image's own content.
import { copyImageContent, type CopyOptions } from './copy.js'
import { alone, type Attachment } from './oci/attachments.js'
import { toManifest, type Descriptor, type Manifest } from './oci/manifest.js'
import { ReferrerIndex } from './oci/referrers.js'
import type { Repository } from './oci/repository.js'

/** A legacy tag already present with other signatures: keep both sets of layers, as cosign appends them. */
function mergeLegacy(existing: Manifest, incoming: Attachment, label: string): Manifest | undefined {
  const current = JSON.parse(existing.bytes.toString('utf8')) as { layers?: Descriptor[] }
  const have = new Set((current.layers ?? []).map((l) => l.digest))
  const missing = incoming.content.blobs.slice(1).filter((l) => !have.has(l.digest))
  if (missing.length === 0) return undefined
  const merged = { ...current, layers: [...(current.layers ?? []), ...missing] }
  return toManifest(Buffer.from(JSON.stringify(merged)), existing.mediaType, label)
}

export interface AttachmentCopyResult {
  copied: number
  present: number
  /** Attachments that could not be carried (a blob missing at the source, …): said, and left behind. */
  notes: string[]
}

/**
 * Carries attachments to another repository: their blobs, then the legacy tag
 * (merged with any signatures already there) or the referrer manifest, listed
 * in the fallback index where the destination has no referrers API.
 */
export async function copyAttachments(
  attachments: readonly Attachment[],
  from: Repository,
  to: Repository,
  options: CopyOptions
): Promise<AttachmentCopyResult> {
  const result: AttachmentCopyResult = { copied: 0, present: 0, notes: [] }
  const referrers = new ReferrerIndex(to)
  // Each distinct blob is copied once, however many attachments list it.
  const blobs = { ...options, landed: new Map<string, Promise<Repository>>() }

  await Promise.all(
    attachments.map((attachment) =>
      alone(result.notes, `carrying ${from.name}:${attachment.reference} to ${to.name}`, async () => {
        await copyImageContent({ root: attachment.manifest, children: [], blobs: attachment.content.blobs, platforms: [] }, from, to, blobs)
        if (attachment.kind !== 'referrer') {
          const existing = await to.fetchManifest(attachment.reference)
          if (existing?.digest === attachment.manifest.digest) {
            result.present++
            return
          }
          const manifest = existing ? mergeLegacy(existing, attachment, `${to.name}:${attachment.reference}`) : attachment.manifest
          if (!manifest) {
            result.present++
            return
          }
          await options.limit(() => to.putManifest(attachment.reference, manifest))
          result.copied++
          return
        }
        const present = await to.hasManifest(attachment.manifest.digest)
        const ociSubject = present ? undefined : await options.limit(() => to.putManifest(attachment.manifest.digest, attachment.manifest))
        const listed = await referrers.add(attachment.subject, attachment.descriptor, ociSubject)
        if (present && !listed) result.present++
        else result.copied++
      })
    )
  )
  return result
}
