import { PromoteError } from '../errors.js'
import { untrusted } from '../untrusted.js'
import { SHA256_DIGEST, sha256Digest } from './digest.js'
import { INDEX_MEDIA_TYPES, isManifestMediaType } from './media-types.js'

export interface Platform {
  readonly os?: string
  readonly architecture?: string
  readonly variant?: string
}

export interface Descriptor {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
  readonly platform?: Platform
  readonly artifactType?: string
  readonly annotations?: Readonly<Record<string, string>>
}

/** A manifest as the registry stored it: the bytes are the identity, never re-serialised. */
export interface Manifest {
  readonly bytes: Buffer
  readonly mediaType: string
  /** sha256 of `bytes`, computed here, never taken from a header. */
  readonly digest: string
}

export interface ManifestContent {
  readonly isIndex: boolean
  /** Child manifests of an index, in its order. */
  readonly manifests: readonly Descriptor[]
  /** Config and layers of an image manifest. */
  readonly blobs: readonly Descriptor[]
  readonly subject?: Descriptor
  /** The manifest's artifactType, else its config media type (OCI 1.1 artifacts). */
  readonly artifactType?: string
  readonly annotations?: Readonly<Record<string, string>>
}

/** Manifests larger than this are refused, as the distribution spec lets registries do. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

function stripParams(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase() || undefined
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.mediaType !== 'string' ||
    typeof d.digest !== 'string' ||
    !SHA256_DIGEST.test(d.digest) ||
    typeof d.size !== 'number' ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0
  ) {
    throw new PromoteError('MANIFEST_INVALID', `${where} is not a valid descriptor (mediaType, sha256 digest and size are required)`)
  }
  return d as Descriptor
}

function parseJson(bytes: Buffer, label: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch (error) {
    throw new PromoteError('MANIFEST_INVALID', `${label} is not valid JSON`, { cause: error })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PromoteError('MANIFEST_INVALID', `${label} is not a JSON object`)
  }
  return parsed as Record<string, unknown>
}

/**
 * Builds a Manifest from bytes a store returned, settling its media type: the
 * `mediaType` field wins over Content-Type (some registries answer with a
 * generic one), and only OCI and Docker v2 manifests and indexes are accepted.
 */
export function toManifest(bytes: Buffer, contentType: string | undefined, label: string): Manifest {
  const json = parseJson(bytes, label)
  if (json['schemaVersion'] !== 2) {
    const what =
      json['schemaVersion'] === 1
        ? 'a Docker schema 1 manifest (deprecated; not supported)'
        : `schemaVersion ${untrusted(JSON.stringify(json['schemaVersion'] ?? null), 40)}`
    throw new PromoteError('MANIFEST_INVALID', `${label} is ${what}; oci-promote copies OCI and Docker v2 manifests and indexes`)
  }
  const declared = typeof json['mediaType'] === 'string' ? json['mediaType'] : undefined
  const header = stripParams(contentType)
  let mediaType = declared ?? (header && isManifestMediaType(header) ? header : undefined)
  if (!mediaType) {
    // OCI manifests may omit mediaType; the shape tells an index from an image.
    mediaType = Array.isArray(json['manifests']) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json'
  }
  if (!mediaType || !isManifestMediaType(mediaType)) {
    throw new PromoteError(
      'MANIFEST_INVALID',
      `${label} is media type ${untrusted(mediaType ?? header ?? 'unknown')}; oci-promote copies OCI and Docker v2 manifests and indexes`
    )
  }
  return { bytes, mediaType, digest: sha256Digest(bytes) }
}

export function parseManifest(manifest: Manifest, label: string): ManifestContent {
  const json = parseJson(manifest.bytes, label)
  const subject = json['subject'] === undefined ? undefined : checkDescriptor(json['subject'], `${label} subject`)
  const annotations = typeof json['annotations'] === 'object' && json['annotations'] !== null ? (json['annotations'] as Record<string, string>) : undefined
  const extra = {
    ...(subject ? { subject } : {}),
    ...(annotations ? { annotations } : {}),
    ...(typeof json['artifactType'] === 'string' ? { artifactType: json['artifactType'] } : {})
  }
  if (INDEX_MEDIA_TYPES.has(manifest.mediaType)) {
    if (!Array.isArray(json['manifests'])) throw new PromoteError('MANIFEST_INVALID', `${label} is an index without a "manifests" list`)
    const manifests = json['manifests'].map((m, i) => checkDescriptor(m, `${label} manifests[${i}]`))
    return { isIndex: true, manifests, blobs: [], ...extra }
  }
  const config = checkDescriptor(json['config'], `${label} config`)
  if (!Array.isArray(json['layers'])) throw new PromoteError('MANIFEST_INVALID', `${label} is an image manifest without a "layers" list`)
  const layers = json['layers'].map((l, i) => checkDescriptor(l, `${label} layers[${i}]`))
  return { isIndex: false, manifests: [], blobs: [config, ...layers], artifactType: config.mediaType, ...extra }
}

export function describePlatform(platform: Platform | undefined): string {
  if (!platform) return 'unknown platform'
  return untrusted([platform.os, platform.architecture, platform.variant].filter(Boolean).join('/'), 64)
}

/** An index's entries judged one by one: what is valid, and a note for each entry that is not. */
export interface IndexEntries {
  readonly descriptors: readonly Descriptor[]
  readonly skipped: readonly string[]
}

/**
 * The entries of an index that lists attachments (a referrers response, a
 * fallback index): anyone who can push may add to one, so a malformed entry is
 * skipped and said, and never hides the valid ones beside it.
 */
export function indexEntries(bytes: Buffer, label: string): IndexEntries {
  const json = parseJson(bytes, label)
  if (!Array.isArray(json['manifests'])) throw new PromoteError('MANIFEST_INVALID', `${label} is not an image index`)
  const descriptors: Descriptor[] = []
  const skipped: string[] = []
  json['manifests'].forEach((m, i) => {
    try {
      descriptors.push(checkDescriptor(m, `${label} manifests[${i}]`))
    } catch (error) {
      skipped.push(`${(error as Error).message}; skipped`)
    }
  })
  return { descriptors, skipped }
}
