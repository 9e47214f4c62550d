// Registries that cap a request body get a large blob in chunks (POST, PATCH with Content-Range, PUT), as the
// distribution spec describes; the real registry behind the capping proxy stores exactly the blob.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { buildImage, type Image } from '../scripts/lib/images.ts'
import { request } from 'node:http'
import { startBodyCapProxy, type BodyCapOptions } from './support/body-cap-proxy.ts'
import { pathOf, startRegistryProxy, targetOf } from './support/registry-proxy.ts'
import { createHarness } from './support/harness.ts'
import { hasBlob, pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'

const CAP = 64 * 1024
let source: RunningRegistry
let capped: RunningRegistry
let seq = 0

beforeAll(async () => {
  ;[source, capped] = await Promise.all([startRegistry(), startRegistry()])
})
afterAll(async () => {
  await Promise.all([source?.stop(), capped?.stop()])
})

/** Promotes a fresh image with one layer of `layerBytes` to the capped registry, through a proxy with `options`. */
async function promoteThrough(options: BodyCapOptions, layerBytes: number, sourceHost = source.host): Promise<{ image: Image; repo: string; seen: string[] }> {
  const image = buildImage({ layerSizes: [layerBytes], uncompressed: true })
  const repo = `chunked/app${++seq}`
  await pushImage(source.url, repo, 'build', image)
  const [host, port] = capped.host.split(':') as [string, string]
  const proxy = await startBodyCapProxy({ host, port: Number(port) }, options)
  const h = createHarness()
  try {
    await h.run({ source: `${sourceHost}/${repo}:build`, to: [`${proxy.host}/${repo}:prod`] })
    return { image, repo, seen: proxy.seen }
  } finally {
    await h.close()
    await proxy.stop()
  }
}

async function expectStored(image: Image, repo: string): Promise<void> {
  expect(await tagDigest(capped.url, repo, 'prod')).toBe(image.digest)
  for (const blob of image.blobs) expect(await hasBlob(capped.url, repo, blob.digest)).toBe(true)
}

describe('a registry that caps request bodies', () => {
  it('that announces OCI-Chunk-Max-Length gets the large layer in chunks within the cap, and a small blob in one PUT', async () => {
    const { image, repo, seen } = await promoteThrough({ maxBody: CAP, announce: true }, 300 * 1024)
    await expectStored(image, repo)
    const patches = seen.filter((s) => s.startsWith('PATCH ')).map((s) => Number(s.split(' ')[1]))
    expect(patches.length).toBeGreaterThanOrEqual(5)
    expect(Math.max(...patches)).toBeLessThanOrEqual(CAP)
    expect(seen).not.toContain('PUT 413')
    // The config blob is small: one PUT, no chunks.
    expect(seen.filter((s) => /^PUT [1-9]/.test(s)).length).toBeGreaterThanOrEqual(1)
  })

  it('that only answers 413 gets the blob again in chunks, halving until one is taken', async () => {
    const { image, repo, seen } = await promoteThrough({ maxBody: CAP, announce: false }, 300 * 1024)
    await expectStored(image, repo)
    expect(seen).toContain('PUT 413')
    expect(seen).toContain('PATCH 413')
    expect(seen.some((s) => s === `PATCH ${CAP}`)).toBe(true)
  })

  it('does not cut chunks below 64 KiB, whatever maximum a registry announces (1 byte would be a request per byte)', async () => {
    const { image, repo, seen } = await promoteThrough({ maxBody: CAP, announce: true, announced: 1 }, 300 * 1024)
    await expectStored(image, repo)
    // Every blob goes in chunks (each is over the announced byte): the layer in five of 64 KiB or less, the config in one.
    const patches = seen.filter((s) => s.startsWith('PATCH ')).map((s) => Number(s.split(' ')[1]))
    expect(patches).toHaveLength(6)
    expect(patches.reduce((a, b) => a + b)).toBe(image.blobs.reduce((n, b) => n + b.size, 0))
  })

  it("resumes from the registry's Range when a chunk's answer is lost, instead of starting the blob over", async () => {
    const { image, repo, seen } = await promoteThrough({ maxBody: CAP, announce: true, breakPatch: 2, statusOnAnyLocation: true }, 300 * 1024)
    await expectStored(image, repo)
    // 300 KiB in 64 KiB chunks is 5 PATCHes; the broken one had landed, so none is sent twice.
    expect(seen.filter((s) => s.startsWith('PATCH '))).toHaveLength(5)
  })

  it('resumes mid-chunk when only part of a chunk landed, reading the source again up to where the upload stands', async () => {
    const { image, repo, seen } = await promoteThrough({ maxBody: CAP, announce: true, halfPatch: 2, statusOnAnyLocation: true }, 300 * 1024)
    await expectStored(image, repo)
    // The second chunk landed in half: the upload goes on from the middle of it, in whole chunks again; no byte that
    // landed is sent twice (what was sent, less the half that never reached the registry, is the blob) and the blob is
    // not started over.
    const patches = seen.filter((s) => s.startsWith('PATCH ')).map((s) => Number(s.split(' ')[1]))
    expect(patches).toEqual([CAP, CAP, CAP, CAP, CAP, 300 * 1024 - CAP / 2 - 4 * CAP])
    expect(patches.reduce((a, b) => a + b) - CAP / 2).toBe(300 * 1024)
  })

  it('goes on from where the upload stands when the source breaks mid-chunk, reading the source anew', async () => {
    // The source registry's answer to the first download of the large layer is cut after 100 KiB: in the middle of
    // the second chunk, whose request breaks with it.
    const blobGets: string[] = []
    const cutting = await startRegistryProxy(targetOf(source.host), [
      {
        answer(req, res) {
          if (req.method !== 'GET' || !pathOf(req).includes('/blobs/sha256:')) return false
          blobGets.push(pathOf(req))
          if (blobGets.filter((p) => p === pathOf(req)).length > 1) return false
          const upstream = request({ ...targetOf(source.host), method: 'GET', path: req.url, headers: req.headers }, (answer) => {
            if (Number(answer.headers['content-length']) < 200 * 1024) {
              res.writeHead(answer.statusCode ?? 502, answer.headers)
              return void answer.pipe(res)
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            let sent = 0
            answer.on('data', (data: Buffer) => {
              const room = 100 * 1024 - sent
              if (room > 0) res.write(data.subarray(0, room))
              sent += data.length
              if (sent >= 100 * 1024) {
                answer.destroy()
                res.socket?.destroy()
              }
            })
          })
          upstream.end()
          return true
        }
      }
    ])
    try {
      const { image, repo, seen } = await promoteThrough({ maxBody: CAP, announce: true, statusOnAnyLocation: true }, 300 * 1024, cutting.host)
      await expectStored(image, repo)
      const layer = image.blobs.find((b) => b.size === 300 * 1024)!
      // The layer was downloaded twice (the second time read up to where the upload stood), and no byte went to the
      // registry twice: the upload went on rather than starting over, in chunks within the cap.
      expect(blobGets.filter((p) => p.endsWith(layer.digest))).toHaveLength(2)
      const patches = seen.filter((s) => s.startsWith('PATCH ')).map((s) => Number(s.split(' ')[1]))
      expect(patches.reduce((a, b) => a + b)).toBe(300 * 1024)
      expect(Math.max(...patches)).toBeLessThanOrEqual(CAP)
    } finally {
      await cutting.stop()
    }
  })

  it('starts the blob over, safely, where the registry cannot say where a broken upload stands (Distribution 2.8)', async () => {
    const { image, repo, seen } = await promoteThrough({ maxBody: CAP, announce: true, breakPatch: 2 }, 300 * 1024)
    await expectStored(image, repo)
    // Two chunks of the first upload, then all five of a fresh one.
    expect(seen.filter((s) => s.startsWith('PATCH '))).toHaveLength(7)
  })
})
