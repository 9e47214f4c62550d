import type { Readable } from 'node:stream'
import type { Descriptor, IndexEntries, Manifest } from './manifest.js'

/**
 * One repository in some store: a registry repository or an OCI layout
 * directory. Promotion is written against this, so every copy path works the
 * same whichever side is a registry and which a directory.
 */
export interface Repository {
  /** `host/repo` or `oci:PATH`, as people write it. */
  readonly name: string
  /** Identifies the store: repositories of one store can mount each other's blobs. */
  readonly store: string

  /**
   * Fetches by tag or digest and checks the bytes hash to what was asked for; undefined when absent. `probe`: the
   * reference may well not exist (a signature tag, a fallback index), so a registry is asked with HEAD first: on
   * Docker Hub a manifest GET counts against the pull rate limit and a HEAD does not.
   */
  fetchManifest(reference: string, options?: { readonly probe?: boolean }): Promise<Manifest | undefined>
  /** The digest a tag points at, or undefined when the tag does not exist. */
  resolveTag(tag: string): Promise<string | undefined>
  hasManifest(digest: string): Promise<boolean>
  /**
   * Stores the exact bytes under a tag or their digest. Returns the `OCI-Subject` the registry answered with: it
   * indexes the manifest as a referrer of that digest itself.
   */
  putManifest(reference: string, manifest: Manifest): Promise<string | undefined>
  /** Removes a tag (not the manifest it points at); used only to undo a tag this run created. */
  deleteTag(tag: string): Promise<void>
  /** Every tag, page by page as the store serves them (prune). */
  listTags(): Promise<string[]>
  /** Deletes a manifest and every tag that points at it (prune); a manifest already gone is not an error. */
  deleteManifest(digest: string): Promise<void>

  hasBlob(descriptor: Descriptor): Promise<boolean>
  openBlob(descriptor: Descriptor): Promise<Readable>
  /** Writes a blob from a stream that `open` may be asked for again if a transient fault forces a retry. */
  writeBlob(descriptor: Descriptor, open: () => Promise<Readable>): Promise<void>
  /** Links a blob another repository of the same store holds; false when the store declined. */
  mountBlob(descriptor: Descriptor, from: Repository): Promise<boolean>

  /**
   * The OCI 1.1 referrers API for `digest`: the descriptors it lists (and
   * the entries it skipped as malformed), or undefined when the store has no such API (then the `sha256-<hex>` tag is
   * the fallback): https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
   */
  referrersFromApi(digest: string): Promise<IndexEntries | undefined>
}
