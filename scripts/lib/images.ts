// Builds small, real OCI and Docker v2 images in memory and writes them to OCI
// image layouts: the demo's embedded default and the tests' fixtures.
// Plain TypeScript that Node 24 runs directly (type stripping): no parameter properties, no enums.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

export type Flavor = 'oci' | 'docker'

export interface Blob {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
  readonly bytes: Buffer
}

export interface Image {
  readonly mediaType: string
  readonly digest: string
  readonly bytes: Buffer
  readonly blobs: readonly Blob[]
  readonly children: readonly Image[]
  readonly platform?: { os: string; architecture: string; variant?: string }
}

const TYPES = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip'
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip'
  }
} as const

const UNCOMPRESSED_LAYER = 'application/vnd.oci.image.layer.v1.tar'

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes }
}

function descriptor(b: { mediaType: string; digest: string; size: number }): object {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size }
}

export interface ImageOptions {
  readonly flavor?: Flavor
  /** Sizes of the uncompressed layers, filled with random bytes (so each build is unique). */
  readonly layerSizes?: readonly number[]
  readonly platform?: { os: string; architecture: string; variant?: string }
  readonly label?: string
  /** Store layers uncompressed (tar media type): big benchmark layers without the cost of gzip. */
  readonly uncompressed?: boolean
  /** Layers several images share (the base image of a release's services), before the image's own: see baseLayer. */
  readonly baseLayers?: readonly Blob[]
  /** The config's `created` time (RFC 3339), as a build writes it. */
  readonly created?: string
}

/** An uncompressed layer of random bytes, to share between images as their common base. */
export function baseLayer(size: number): Blob {
  return blob(UNCOMPRESSED_LAYER, randomBytes(size))
}

export function buildImage(options: ImageOptions = {}): Image {
  const types = TYPES[options.flavor ?? 'oci']
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' }
  const raw = (options.layerSizes ?? [1024]).map((size) => randomBytes(size))
  // Level 1: random data does not compress, and the tests want speed, not ratio.
  const own = raw.map((bytes) => (options.uncompressed ? blob(UNCOMPRESSED_LAYER, bytes) : blob(types.layer, gzipSync(bytes, { level: 1 }))))
  const base = options.baseLayers ?? []
  const layers = [...base, ...own]
  const config = blob(
    types.config,
    Buffer.from(
      JSON.stringify({
        ...(options.created ? { created: options.created } : {}),
        ...platform,
        config: { Labels: { 'org.opencontainers.image.title': options.label ?? 'oci-promote fixture' } },
        // An uncompressed base layer's diff_id is its digest.
        rootfs: { type: 'layers', diff_ids: [...base.map((b) => b.digest), ...raw.map(sha256)] }
      })
    )
  )
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.manifest,
      config: descriptor(config),
      layers: layers.map(descriptor)
    })
  )
  return { mediaType: types.manifest, digest: sha256(bytes), bytes, blobs: [config, ...layers], children: [], platform }
}

export function buildIndex(children: readonly Image[], flavor: Flavor = 'oci'): Image {
  const types = TYPES[flavor]
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.index,
      manifests: children.map((c) => ({ ...descriptor({ mediaType: c.mediaType, digest: c.digest, size: c.bytes.length }), platform: c.platform }))
    })
  )
  return { mediaType: types.index, digest: sha256(bytes), bytes, blobs: [], children }
}

export const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 's390x' }
] as const

export function buildMultiArch(platformCount: number, options: ImageOptions = {}): Image {
  const children = PLATFORMS.slice(0, platformCount).map((platform) => buildImage({ ...options, platform }))
  return buildIndex(children, options.flavor ?? 'oci')
}

/** Every blob and manifest of an image, children first: the order a registry accepts them in. */
export function contentOf(image: Image): { blobs: Blob[]; manifests: Image[] } {
  const blobs = new Map<string, Blob>()
  const manifests: Image[] = []
  for (const child of image.children) {
    for (const b of child.blobs) blobs.set(b.digest, b)
    manifests.push(child)
  }
  for (const b of image.blobs) blobs.set(b.digest, b)
  manifests.push(image)
  return { blobs: [...blobs.values()], manifests }
}

/** Writes the image into an OCI image layout directory under `tag`, creating the layout if needed. */
export async function writeLayout(dir: string, image: Image, tag: string): Promise<void> {
  const blobsDir = join(dir, 'blobs', 'sha256')
  await mkdir(blobsDir, { recursive: true })
  const { blobs, manifests } = contentOf(image)
  for (const b of [...blobs, ...manifests]) await writeFile(join(blobsDir, b.digest.slice(7)), b.bytes)
  let index: { schemaVersion: number; mediaType: string; manifests: { annotations?: Record<string, string> }[] }
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as typeof index
  } catch {
    index = { schemaVersion: 2, mediaType: TYPES.oci.index, manifests: [] }
  }
  const refName = 'org.opencontainers.image.ref.name'
  index.manifests = index.manifests.filter((m) => m.annotations?.[refName] !== tag)
  index.manifests.push({ ...descriptor({ mediaType: image.mediaType, digest: image.digest, size: image.bytes.length }), annotations: { [refName]: tag } })
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await writeFile(join(dir, 'index.json'), JSON.stringify(index, null, 2))
}
