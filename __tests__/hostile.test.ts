// Hostile and broken registries: each lie is refused with a clear error, and
// nothing is written to the destination.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { buildImage, contentOf } from '../scripts/lib/images.ts'
import { createHarness } from './support/harness.ts'
import { serveImage, startFakeServer, type FakeServer } from './support/fake-registry.ts'
import { startRegistry, tagDigest, writeDockerConfig, type RunningRegistry } from './support/registry.ts'

let destination: RunningRegistry
const servers: FakeServer[] = []

async function fake(...args: Parameters<typeof startFakeServer>): Promise<FakeServer> {
  const server = await startFakeServer(...args)
  servers.push(server)
  return server
}

beforeAll(async () => {
  destination = await startRegistry()
})
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  await destination?.stop()
})

describe('a registry that lies about digests', () => {
  it('refuses a Docker-Content-Digest that does not match the bytes', async () => {
    const image = buildImage()
    const liar = await fake(serveImage(image, { repository: 'lie/app', tag: 'v1', digestHeader: () => `sha256:${'a'.repeat(64)}` }))
    const h = createHarness()
    try {
      const error = (await h.run({ source: `${liar.host}/lie/app:v1`, to: [`${destination.host}/lie/app:prod`] }).catch((e: unknown) => e)) as Error & {
        code: string
      }
      expect(error.code).toBe('DIGEST_MISMATCH')
      expect(error.message).toContain(`claims ${liar.host}/lie/app:v1 is sha256:${'a'.repeat(64)}, but the bytes it sent hash to ${image.digest}`)
      expect(h.writes()).toEqual([])
      expect(await tagDigest(destination.url, 'lie/app', 'prod')).toBeUndefined()
    } finally {
      await h.close()
    }
  })

  it('refuses bytes that do not hash to the digest that was asked for, even with no header to compare', async () => {
    const image = buildImage()
    const impostor = buildImage()
    const liar = await fake(
      serveImage(image, { repository: 'swap/app', tag: image.digest, manifestBytes: () => impostor.bytes, digestHeader: () => undefined })
    )
    const h = createHarness()
    try {
      await expect(h.run({ source: `${liar.host}/swap/app@${image.digest}`, to: [`${destination.host}/swap/app:prod`] })).rejects.toMatchObject({
        code: 'DIGEST_MISMATCH',
        message: expect.stringContaining(`answered a request for ${liar.host}/swap/app@${image.digest} with bytes that hash to ${impostor.digest}`)
      })
      expect(h.writes()).toEqual([])
    } finally {
      await h.close()
    }
  })

  it('refuses a manifest over 4 MiB', async () => {
    const image = buildImage()
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)
    const liar = await fake(serveImage(image, { repository: 'huge/app', tag: 'v1', manifestBytes: () => huge, digestHeader: () => undefined }))
    const h = createHarness()
    try {
      await expect(h.run({ source: `${liar.host}/huge/app:v1`, to: ['x'] })).rejects.toMatchObject({ code: 'MANIFEST_TOO_LARGE' })
    } finally {
      await h.close()
    }
  })

  it('catches a blob whose bytes are not its digest when verify-blobs is on', async () => {
    const image = buildImage({ layerSizes: [4096] })
    const layer = image.blobs[1]!
    const liar = await fake(
      serveImage(image, {
        repository: 'rot/app',
        tag: 'v1',
        blobBytes: (digest, bytes) => (digest === layer.digest ? Buffer.from(bytes).fill(7, 0, 10) : bytes)
      })
    )
    const h = createHarness()
    try {
      await expect(h.run({ source: `${liar.host}/rot/app:v1`, to: [`${destination.host}/rot/app:prod`], verifyBlobs: true })).rejects.toMatchObject({
        code: 'BLOB_MISMATCH',
        message: expect.stringContaining(`blob ${layer.digest} in ${liar.host}/rot/app: content hashes to sha256:`)
      })
      expect(h.writes()).toEqual([])
    } finally {
      await h.close()
    }
  })

  it('reports, without retrying forever, a manifest that is not JSON', async () => {
    const image = buildImage()
    const liar = await fake(
      serveImage(image, { repository: 'junk/app', tag: 'v1', manifestBytes: () => Buffer.from('<html>not a manifest</html>'), digestHeader: () => undefined })
    )
    const h = createHarness()
    try {
      await expect(h.run({ source: `${liar.host}/junk/app:v1`, to: ['x'] })).rejects.toMatchObject({
        code: 'MANIFEST_INVALID',
        message: expect.stringContaining('is not valid JSON')
      })
      expect(liar.seen.filter((r) => r.path.startsWith('/v2/junk/app/manifests/')).length).toBe(1)
    } finally {
      await h.close()
    }
  })
})

describe('endless, oversized and misdeclared content', () => {
  it('refuses a blob that keeps coming past its declared size, and moves no tag', async () => {
    const image = buildImage({ layerSizes: [4096] })
    const layer = image.blobs[1]!
    const liar = await fake(
      serveImage(image, {
        repository: 'long/app',
        tag: 'v1',
        blobBytes: (digest, bytes) => (digest === layer.digest ? Buffer.concat([bytes, Buffer.alloc(1 << 20, 1)]) : bytes)
      })
    )
    const h = createHarness()
    try {
      const error = (await h.run({ source: `${liar.host}/long/app:v1`, to: [`${destination.host}/long/app:prod`] }).catch((e: unknown) => e)) as Error & {
        code: string
      }
      expect(error).toBeInstanceOf(Error)
      expect(error.message).toMatch(/long\/app/)
      expect(await tagDigest(destination.url, 'long/app', 'prod')).toBeUndefined()
    } finally {
      await h.close()
    }
  })

  it('refuses an endless manifest body without reading it all', async () => {
    const image = buildImage()
    const endless = await fake((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}')
      res.writeHead(200, { 'content-type': image.mediaType })
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      const pump = (): void => {
        while (res.write(chunk)) if (res.writableLength > 1 << 20) break
        if (!res.destroyed) res.once('drain', pump)
      }
      pump()
    })
    const h = createHarness()
    try {
      await expect(h.run({ source: `${endless.host}/endless/app:v1`, to: ['x'] })).rejects.toMatchObject({ code: 'MANIFEST_TOO_LARGE' })
    } finally {
      await h.close()
    }
  })

  it('refuses a manifest of an unknown media type, and a Docker schema 1 manifest', async () => {
    const image = buildImage()
    const odd = await fake(
      serveImage(image, {
        repository: 'odd/app',
        tag: 'v1',
        manifestBytes: () => Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.evil+json"}'),
        digestHeader: () => undefined
      })
    )
    const old = await fake(
      serveImage(image, {
        repository: 'old/app',
        tag: 'v1',
        manifestBytes: () => Buffer.from('{"schemaVersion":1,"name":"old/app","fsLayers":[]}'),
        digestHeader: () => undefined
      })
    )
    const h = createHarness()
    try {
      await expect(h.run({ source: `${odd.host}/odd/app:v1`, to: ['x'] })).rejects.toThrow(
        /media type application\/vnd.evil\+json; oci-promote copies OCI and Docker v2/
      )
      await expect(h.run({ source: `${old.host}/old/app:v1`, to: ['x'] })).rejects.toThrow(/Docker schema 1 manifest \(deprecated; not supported\)/)
    } finally {
      await h.close()
    }
  })
})

describe('token realms', () => {
  it('refuses a realm on a link-local address before sending anything there', async () => {
    const metadata = await fake((req, res) => {
      if (req.url === '/v2/')
        return void res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://169.254.169.254/latest/meta-data/iam",service="x"' }).end()
      return false
    })
    const configDir = await writeDockerConfig({ [metadata.host]: 'user:pw' })
    const h = createHarness({ credentials: { configDir } })
    try {
      await expect(h.run({ source: `${metadata.host}/any/app:v1`, to: ['x'] })).rejects.toMatchObject({
        code: 'REALM_REFUSED',
        message: expect.stringContaining('link-local address')
      })
      expect(h.requests.every((r) => !r.origin.includes('169.254'))).toBe(true)
    } finally {
      await h.close()
    }
  })
})

describe('redirects', () => {
  it('follows a blob redirect to another origin without sending the credentials there', async () => {
    const image = buildImage({ layerSizes: [8192] })
    const { blobs } = contentOf(image)
    const storage = await fake((req, res) => {
      const blob = blobs.find((b) => req.url?.startsWith(`/storage/${b.digest}`))
      if (!blob) return false
      res.writeHead(200, { 'content-length': String(blob.size) }).end(blob.bytes)
    })
    const source = await fake(
      serveImage(image, {
        repository: 'redir/app',
        tag: 'v1',
        basic: 'promoter:s3cret',
        blobRedirect: (digest) => `${storage.url}/storage/${digest}?X-Amz-Signature=abc`
      })
    )
    const configDir = await writeDockerConfig({ [source.host]: 'promoter:s3cret' })
    const h = createHarness({ credentials: { configDir } })
    try {
      const result = await h.run({ source: `${source.host}/redir/app:v1`, to: [`${destination.host}/redir/app:prod`] })
      expect(result.copied.blobsUploaded).toBe(2)
      expect(await tagDigest(destination.url, 'redir/app', 'prod')).toBe(image.digest)
      expect(storage.seen.length).toBe(2)
      expect(storage.seen.every((r) => r.authorization === undefined)).toBe(true)
      expect(source.seen.filter((r) => r.path.includes('/blobs/')).every((r) => r.authorization?.startsWith('Basic '))).toBe(true)
    } finally {
      await h.close()
    }
  })
})

describe("the registry's own words", () => {
  it('are kept when a push is refused, and NAME_UNKNOWN says which repository to create first (as Amazon ECR answers)', async () => {
    const image = buildImage()
    const source = await fake(serveImage(image, { repository: 'src/app', tag: 'build' }))
    // ECR refuses an upload to a repository that does not exist with 404 and this body, in its own words.
    const ecr = await fake((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      if (path === '/v2/') return void res.writeHead(200).end('{}')
      if (req.method === 'HEAD' || req.method === 'GET') return void res.writeHead(404, { 'content-type': 'application/json' }).end()
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end(
        JSON.stringify({
          errors: [{ code: 'NAME_UNKNOWN', message: "The repository with name 'missing/app' does not exist in the registry with id '123456789012'" }]
        })
      )
    })
    const h = createHarness()
    try {
      const error = (await h.run({ source: `${source.host}/src/app:build`, to: [`${ecr.host}/missing/app:prod`] }).catch((e: unknown) => e)) as Error & {
        code: string
      }
      expect(error.code).toBe('REGISTRY_ERROR')
      expect(error.message).toContain(
        `POST blob upload ${ecr.host}/missing/app: HTTP 404 (NAME_UNKNOWN: The repository with name 'missing/app' does not exist in the registry with id '123456789012')`
      )
      expect(error.message).toContain(`The repository missing/app does not exist in ${ecr.host}: create it first`)
    } finally {
      await h.close()
    }
  })
})
