import type { LimitFunction } from 'p-limit'
import type { ImageGraph } from './image.js'
import type { Descriptor } from './oci/manifest.js'
import type { Repository } from './oci/repository.js'
import { withRetry, type RetryPolicy } from './oci/transport.js'

export interface CopyStats {
  blobsUploaded: number
  blobsMounted: number
  blobsPresent: number
  bytesUploaded: number
  manifestsWritten: number
}

export function emptyStats(): CopyStats {
  return { blobsUploaded: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0, manifestsWritten: 0 }
}

/** How far one repository's copy has come, after each blob: for a progress line on a terminal. */
export interface CopyProgress {
  readonly repository: string
  readonly blobsDone: number
  readonly blobs: number
  readonly bytesDone: number
  readonly bytes: number
}

export interface CopyOptions {
  readonly limit: LimitFunction
  readonly retry: RetryPolicy
  readonly signal?: AbortSignal
  readonly progress?: (progress: CopyProgress) => void
  /**
   * Where each blob went or is going in the destination's store (one registry), by digest, shared by every copy of
   * a run into that store: several attachments share blobs (the empty config of every Sigstore referrer), the images
   * of a release share base layers, and two uploads of one digest into one repository at once can leave a registry
   * (Distribution 2.8 seen here) without it when the manifest that needs it arrives. A blob is sent once per store;
   * any other repository there mounts it from where it landed.
   */
  readonly landed?: Map<string, Promise<Repository>>
}

async function copyBlob(blob: Descriptor, from: Repository, to: Repository, options: CopyOptions, stats: CopyStats): Promise<void> {
  // In one registry a mount is the existence check too: it answers 201 whether it linked the blob or the
  // repository already had it, so asking first would only add a round trip per blob.
  if (from.store === to.store && (await to.mountBlob(blob, from))) {
    stats.blobsMounted++
    return
  }
  if (await to.hasBlob(blob)) {
    stats.blobsPresent++
    return
  }
  // A stream cannot be replayed, so a transient fault retries the whole blob from a fresh download.
  await withRetry(options.retry, () => to.writeBlob(blob, () => from.openBlob(blob)), options.signal ? { signal: options.signal } : {})
  stats.blobsUploaded++
  stats.bytesUploaded += blob.size
}

/**
 * Makes `to` hold everything the image needs except its tag: blobs first,
 * then child manifests, so the registry never sees a manifest whose content it
 * lacks (go-containerregistry remote.Pusher orders writes the same way).
 * Present content is skipped; same-store blobs are mounted, never re-sent.
 */
export async function copyImageContent(graph: ImageGraph, from: Repository, to: Repository, options: CopyOptions): Promise<CopyStats> {
  const stats = emptyStats()
  const total = { repository: to.name, blobsDone: 0, blobs: graph.blobs.length, bytesDone: 0, bytes: graph.blobs.reduce((n, b) => n + b.size, 0) }
  await Promise.all(
    graph.blobs.map(async (blob) => {
      // Waiting for another copy of the same blob happens outside the limit: a waiter holding a slot would keep
      // the other blobs of a release (each image's own layers) from starting while the shared ones upload.
      const first = options.landed?.get(blob.digest)
      if (!first) {
        const copy = options.limit(() => copyBlob(blob, from, to, options, stats)).then(() => to)
        options.landed?.set(blob.digest, copy)
        await copy
      } else {
        // Landed in another repository of this store: mount it from there, or copy it after all.
        const there = await first.catch(() => undefined)
        if (there?.name === to.name) stats.blobsPresent++
        else
          await options.limit(async () => {
            if (there && (await to.mountBlob(blob, there))) stats.blobsMounted++
            else await copyBlob(blob, from, to, options, stats)
          })
      }
      total.blobsDone++
      total.bytesDone += blob.size
      options.progress?.({ ...total })
    })
  )
  await Promise.all(
    graph.children.map((child) =>
      options.limit(async () => {
        if (await to.hasManifest(child.digest)) return
        await to.putManifest(child.digest, child)
        stats.manifestsWritten++
      })
    )
  )
  return stats
}
