import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { PromoteError, errorMessage } from '../errors.js'
import { SHA256_DIGEST, VerifyingStream, sha256Digest } from './digest.js'
import { MAX_MANIFEST_BYTES, toManifest, type Descriptor, type Manifest } from './manifest.js'
import { ANNOTATION_REF_NAME, OCI_INDEX } from './media-types.js'
import type { Repository } from './repository.js'

interface LayoutIndex {
  schemaVersion: 2
  mediaType?: string
  manifests: Descriptor[]
  annotations?: Record<string, string>
}

const LAYOUT_FILE = 'oci-layout'
const LAYOUT_VERSION = JSON.stringify({ imageLayoutVersion: '1.0.0' })

// index.json is rewritten whole; writers in this process queue per directory.
const indexLocks = new Map<string, Promise<unknown>>()

/** An OCI Image Layout directory: https://github.com/opencontainers/image-spec/blob/main/image-layout.md */
export class LayoutRepository implements Repository {
  readonly name: string
  readonly store: string
  readonly root: string

  constructor(path: string) {
    this.root = resolve(path)
    this.name = `oci:${path}`
    this.store = `layout:${this.root}`
  }

  #blobPath(digest: string): string {
    if (!SHA256_DIGEST.test(digest)) throw new PromoteError('DIGEST_MISMATCH', `"${digest}" is not a sha256 digest`)
    return join(this.root, 'blobs', 'sha256', digest.slice('sha256:'.length))
  }

  async #readIndex(): Promise<LayoutIndex | undefined> {
    let text: string
    try {
      text = await readFile(join(this.root, 'index.json'), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new PromoteError('LAYOUT_INVALID', `${this.name}: cannot read index.json: ${errorMessage(error)}`, { cause: error })
    }
    let index: LayoutIndex
    try {
      index = JSON.parse(text) as LayoutIndex
    } catch (error) {
      throw new PromoteError('LAYOUT_INVALID', `${this.name}: index.json is not valid JSON`, { cause: error })
    }
    if (!Array.isArray(index.manifests)) throw new PromoteError('LAYOUT_INVALID', `${this.name}: index.json has no "manifests" list`)
    return index
  }

  async #updateIndex(change: (index: LayoutIndex) => void): Promise<void> {
    const previous = indexLocks.get(this.root) ?? Promise.resolve()
    const next = previous
      .catch(() => {})
      .then(async () => {
        await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true })
        const index = (await this.#readIndex()) ?? { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }
        change(index)
        await writeFile(join(this.root, LAYOUT_FILE), LAYOUT_VERSION)
        const temporary = join(this.root, `.index.json.${randomBytes(6).toString('hex')}`)
        await writeFile(temporary, `${JSON.stringify(index, null, 2)}\n`)
        await rename(temporary, join(this.root, 'index.json'))
      })
    indexLocks.set(this.root, next)
    await next
  }

  #tagEntry(index: LayoutIndex, tag: string): Descriptor | undefined {
    return index.manifests.findLast((m) => m.annotations?.[ANNOTATION_REF_NAME] === tag)
  }

  async fetchManifest(reference: string): Promise<Manifest | undefined> {
    // No index.json yet is an empty layout, as a registry answers 404 for a repository nobody pushed to.
    const index = await this.#readIndex()
    if (!index) return undefined
    const entry = SHA256_DIGEST.test(reference) ? index.manifests.find((m) => m.digest === reference) : this.#tagEntry(index, reference)
    const digest = SHA256_DIGEST.test(reference) ? reference : entry?.digest
    if (!digest) return undefined
    let bytes: Buffer
    try {
      const path = this.#blobPath(digest)
      if ((await stat(path)).size > MAX_MANIFEST_BYTES) {
        throw new PromoteError('MANIFEST_TOO_LARGE', `${this.name}@${digest} is larger than ${MAX_MANIFEST_BYTES} bytes; refused`)
      }
      bytes = await readFile(path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        if (entry) throw new PromoteError('LAYOUT_INVALID', `${this.name}: index.json names ${digest} but its blob is missing`)
        return undefined
      }
      throw error
    }
    const label = `${this.name}@${digest}`
    const manifest = toManifest(bytes, entry?.mediaType, label)
    if (manifest.digest !== digest) {
      throw new PromoteError('DIGEST_MISMATCH', `${label}: the stored bytes hash to ${manifest.digest}; the layout is corrupt`)
    }
    return manifest
  }

  async resolveTag(tag: string): Promise<string | undefined> {
    const index = await this.#readIndex()
    return index ? this.#tagEntry(index, tag)?.digest : undefined
  }

  async #hasFile(digest: string, size?: number): Promise<boolean> {
    try {
      const info = await stat(this.#blobPath(digest))
      return size === undefined || info.size === size
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw error
    }
  }

  async hasManifest(digest: string): Promise<boolean> {
    return this.#hasFile(digest)
  }

  async putManifest(reference: string, manifest: Manifest): Promise<undefined> {
    if (sha256Digest(manifest.bytes) !== manifest.digest) {
      throw new PromoteError('DIGEST_MISMATCH', `refusing to store ${manifest.digest} in ${this.name}: the bytes do not hash to it`)
    }
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true })
    if (!(await this.#hasFile(manifest.digest, manifest.bytes.length))) {
      await this.#writeAtomically(manifest.digest, async (target) => writeFile(target, manifest.bytes))
    }
    const descriptor: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }
    await this.#updateIndex((index) => {
      if (SHA256_DIGEST.test(reference)) {
        if (!index.manifests.some((m) => m.digest === manifest.digest)) index.manifests.push(descriptor)
        return
      }
      index.manifests = index.manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] !== reference)
      index.manifests.push({ ...descriptor, annotations: { [ANNOTATION_REF_NAME]: reference } })
    })
  }

  async deleteTag(tag: string): Promise<void> {
    await this.#updateIndex((index) => {
      index.manifests = index.manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] !== tag)
    })
  }

  async listTags(): Promise<string[]> {
    const index = await this.#readIndex()
    return [...new Set((index?.manifests ?? []).map((m) => m.annotations?.[ANNOTATION_REF_NAME]).filter((t): t is string => typeof t === 'string'))]
  }

  /** Drops the manifest from index.json (its tags go with it); its blob stays, as a registry's does until garbage collection. */
  async deleteManifest(digest: string): Promise<void> {
    await this.#updateIndex((index) => {
      index.manifests = index.manifests.filter((m) => m.digest !== digest)
    })
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.#hasFile(descriptor.digest, descriptor.size)
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    const path = this.#blobPath(descriptor.digest)
    if (!(await this.#hasFile(descriptor.digest))) {
      throw new PromoteError('BLOB_UNKNOWN', `${this.name} does not have blob ${descriptor.digest} that its manifest references`)
    }
    return createReadStream(path, { highWaterMark: 1024 * 1024 })
  }

  async #writeAtomically(digest: string, write: (temporary: string) => Promise<void>): Promise<void> {
    const target = this.#blobPath(digest)
    const temporary = `${target}.${randomBytes(6).toString('hex')}.partial`
    try {
      await write(temporary)
      await rename(temporary, target)
    } catch (error) {
      await rm(temporary, { force: true })
      throw error
    }
  }

  async writeBlob(descriptor: Descriptor, open: () => Promise<Readable>): Promise<void> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true })
    await this.#writeAtomically(descriptor.digest, async (temporary) => {
      const label = `blob ${descriptor.digest} for ${this.name}`
      await pipeline(await open(), new VerifyingStream(descriptor.digest, descriptor.size, label), createWriteStream(temporary))
    })
  }

  async mountBlob(): Promise<boolean> {
    return false
  }

  /** Layouts have no referrers API; their referrers live under the fallback tag. */
  async referrersFromApi(): Promise<undefined> {
    return undefined
  }
}
