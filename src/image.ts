import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { LimitFunction } from 'p-limit'
import { PromoteError } from './errors.js'
import { VerifyingStream } from './oci/digest.js'
import { describePlatform, parseManifest, type Descriptor, type Manifest } from './oci/manifest.js'
import { formatReference, type Reference } from './oci/reference.js'
import type { Repository } from './oci/repository.js'

/** Everything a promotion copies: the root manifest, any children, every blob. */
export interface ImageGraph {
  readonly root: Manifest
  /** Child manifests of an index, each fetched by digest and hash-checked. */
  readonly children: readonly Manifest[]
  /** Config and layer blobs of every image manifest, once each. */
  readonly blobs: readonly Descriptor[]
  /** `linux/amd64`, … for an index; empty for a single image. */
  readonly platforms: readonly string[]
}

/**
 * Fetches the source manifest and checks it: its bytes hash to the digest that
 * was asked for (when one was) and to the digest the build job reported.
 * A reference with both tag and digest is resolved by digest, as docker does.
 */
export async function resolveImage(repository: Repository, ref: Reference, expectedDigest?: string): Promise<Manifest> {
  const manifest = await repository.fetchManifest(ref.digest ?? ref.tag ?? 'latest')
  if (!manifest) {
    throw new PromoteError('MANIFEST_UNKNOWN', `image ${formatReference(ref)} was not found: check the repository, tag and credentials`)
  }
  if (expectedDigest && manifest.digest !== expectedDigest) {
    throw new PromoteError(
      'DIGEST_MISMATCH',
      `${formatReference(ref)} resolves to ${manifest.digest}, but the expected digest is ${expectedDigest}: the tag moved since the build, or the wrong digest was passed. Nothing was promoted`
    )
  }
  return manifest
}

/** `linux/amd64`, … of an index's children, read from the index alone; empty for a single image. */
export function platformsOf(root: Manifest): string[] {
  const content = parseManifest(root, `manifest ${root.digest}`)
  return content.manifests.map((m) => describePlatform(m.platform))
}

export async function loadImageGraph(repository: Repository, root: Manifest, limit: LimitFunction): Promise<ImageGraph> {
  const content = parseManifest(root, `manifest ${root.digest}`)
  if (!content.isIndex) return { root, children: [], blobs: content.blobs, platforms: [] }

  const children = await Promise.all(
    content.manifests.map((descriptor) =>
      limit(async () => {
        const child = await repository.fetchManifest(descriptor.digest)
        if (!child) {
          throw new PromoteError(
            'MANIFEST_UNKNOWN',
            `index ${root.digest} in ${repository.name} lists ${descriptor.digest} (${describePlatform(descriptor.platform)}), which the repository does not have`
          )
        }
        if (child.bytes.length !== descriptor.size) {
          throw new PromoteError(
            'MANIFEST_INVALID',
            `index ${root.digest} declares ${descriptor.size} bytes for ${descriptor.digest}, which is ${child.bytes.length}`
          )
        }
        const childContent = parseManifest(child, `manifest ${descriptor.digest}`)
        if (childContent.isIndex) {
          throw new PromoteError('MANIFEST_INVALID', `index ${root.digest} nests another index (${descriptor.digest}); nested indexes are not supported`)
        }
        return { child, blobs: childContent.blobs }
      })
    )
  )
  const blobs = new Map<string, Descriptor>()
  for (const { blobs: childBlobs } of children) for (const blob of childBlobs) blobs.set(blob.digest, blob)
  return {
    root,
    children: children.map(({ child }) => child),
    blobs: [...blobs.values()],
    platforms: platformsOf(root)
  }
}

/** Downloads every blob and checks its digest and size, discarding the bytes. */
export async function verifyBlobs(repository: Repository, graph: ImageGraph, limit: LimitFunction): Promise<{ count: number; bytes: number }> {
  const sizes = await Promise.all(
    graph.blobs.map((blob) =>
      limit(async () => {
        const label = `blob ${blob.digest} in ${repository.name}`
        const verifier = new VerifyingStream(blob.digest, blob.size, label)
        const discard = new Writable({ write: (_chunk, _encoding, done) => done() })
        await pipeline(await repository.openBlob(blob), verifier, discard)
        return verifier.bytesSeen
      })
    )
  )
  return { count: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0) }
}
