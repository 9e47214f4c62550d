// Finding what is attached to an image (cosign's legacy tags and OCI referrers): a registry concern, which
// verification rests on. Carrying attachments to another repository is copying, in src/carry.ts.
import type { LimitFunction } from 'p-limit'
import { PromoteError, type ErrorCode } from '../errors.js'
import { untrusted } from '../untrusted.js'
import { digestTag } from './digest.js'
import { parseManifest, type Descriptor, type Manifest, type ManifestContent } from './manifest.js'
import { listReferrers, type ReferrersVia } from './referrers.js'
import type { Repository } from './repository.js'

/** Cosign's legacy tag suffixes: https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md */
export const LEGACY_SUFFIXES = ['sig', 'att', 'sbom'] as const
export type LegacySuffix = (typeof LEGACY_SUFFIXES)[number]

/** At most this many referrers are read per digest; cosign caps signature layers at 1000 the same way. */
export const MAX_REFERRERS = 128

/** A signature, attestation, SBOM or other artifact stored beside an image. */
export interface Attachment {
  /** The digest it is attached to. */
  readonly subject: string
  readonly kind: LegacySuffix | 'referrer'
  /** `sha256-<hex>.sig` for a legacy tag; the referrer's own digest otherwise. */
  readonly reference: string
  readonly manifest: Manifest
  /** How the referrers listing described it (artifactType, annotations); for tags, the tag's manifest. */
  readonly descriptor: Descriptor
  readonly content: ManifestContent
}

export interface AttachmentListing {
  readonly attachments: readonly Attachment[]
  /** Where the store had something odd, said for the user. */
  readonly notes: readonly string[]
  /** Where each subject's referrers were found. */
  readonly referrersVia: Readonly<Record<string, ReferrersVia>>
}

// What a malformed or missing attachment throws: evidence that counts as nothing, not a fault of the run.
const CONTENT_ERRORS: ReadonlySet<ErrorCode> = new Set([
  'MANIFEST_INVALID',
  'MANIFEST_TOO_LARGE',
  'MANIFEST_UNKNOWN',
  'DIGEST_MISMATCH',
  'BLOB_UNKNOWN',
  'BLOB_MISMATCH'
])

/**
 * Runs one attachment's read or copy alone: when what the store holds is
 * malformed, it is skipped with a note. Anyone who can push to a repository
 * can attach anything, and that must never block a correctly signed image.
 */
export async function alone<T>(notes: string[], what: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work()
  } catch (error) {
    if (!(error instanceof PromoteError) || !CONTENT_ERRORS.has(error.code)) throw error
    notes.push(`${what}: ${untrusted(error.message)}; skipped`)
    return undefined
  }
}

function describe(manifest: Manifest): Descriptor {
  return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }
}

async function legacyTags(repository: Repository, subject: string, notes: string[]): Promise<Attachment[]> {
  const found = await Promise.all(
    LEGACY_SUFFIXES.map((kind) => {
      const reference = `${digestTag(subject)}.${kind}`
      return alone(notes, `${repository.name}:${reference}`, async (): Promise<Attachment | undefined> => {
        const manifest = await repository.fetchManifest(reference, { probe: true })
        if (!manifest) return undefined
        const content = parseManifest(manifest, `${repository.name}:${reference}`)
        if (content.isIndex) return undefined
        return { subject, kind, reference, manifest, descriptor: describe(manifest), content }
      })
    })
  )
  return found.filter((a): a is Attachment => a !== undefined)
}

async function referrers(
  repository: Repository,
  subject: string,
  notes: string[],
  limit: LimitFunction
): Promise<{ attachments: Attachment[]; via: ReferrersVia }> {
  const listing = (await alone(notes, `${repository.name}: the referrers of ${subject}`, () => listReferrers(repository, subject))) ?? {
    descriptors: [],
    via: 'none' as const,
    notes: []
  }
  notes.push(...listing.notes)
  let descriptors = listing.descriptors
  if (descriptors.length > MAX_REFERRERS) {
    notes.push(`${repository.name}: ${descriptors.length} referrers of ${subject}; only the first ${MAX_REFERRERS} were read`)
    descriptors = descriptors.slice(0, MAX_REFERRERS)
  }
  const attachments = await Promise.all(
    descriptors.map((descriptor) =>
      limit(() =>
        alone(notes, `${repository.name}: referrer ${descriptor.digest} of ${subject}`, async (): Promise<Attachment | undefined> => {
          const manifest = await repository.fetchManifest(descriptor.digest)
          if (!manifest) {
            notes.push(`${repository.name}: referrer ${descriptor.digest} of ${subject} is listed but missing`)
            return undefined
          }
          const content = parseManifest(manifest, `referrer ${descriptor.digest}`)
          // A listing is only a hint: the referrer itself must name this subject.
          if (content.subject?.digest !== subject) {
            notes.push(
              `${repository.name}: ${descriptor.digest} is listed as a referrer of ${subject} but names ${content.subject?.digest ?? 'no subject'}; ignored`
            )
            return undefined
          }
          return { subject, kind: 'referrer', reference: descriptor.digest, manifest, descriptor, content }
        })
      )
    )
  )
  return { attachments: attachments.filter((a): a is Attachment => a !== undefined), via: listing.via }
}

/** Everything attached to each digest in a repository: legacy cosign tags and OCI referrers. */
export async function findAttachments(repository: Repository, subjects: readonly string[], limit: LimitFunction): Promise<AttachmentListing> {
  const notes: string[] = []
  const referrersVia: Record<string, ReferrersVia> = {}
  const perSubject = await Promise.all(
    subjects.map(async (subject) => {
      const [tags, refs] = await Promise.all([legacyTags(repository, subject, notes), referrers(repository, subject, notes, limit)])
      referrersVia[subject] = refs.via
      return [...tags, ...refs.attachments]
    })
  )
  return { attachments: perSubject.flat(), notes, referrersVia }
}
