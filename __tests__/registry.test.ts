// Every copy path against the real CNCF Distribution registry on loopback.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildImage, buildMultiArch, writeLayout } from '../scripts/lib/images.ts'
import { PromoteError } from '../src/errors.ts'
import { DEFAULT_IMMUTABLE_TAGS } from '../src/promote.ts'
import { createHarness, type Harness } from './support/harness.ts'
import { freePort, hasBlob, pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'

let primary: RunningRegistry
let secondary: RunningRegistry
let h: Harness

beforeAll(async () => {
  ;[primary, secondary] = await Promise.all([startRegistry(), startRegistry()])
})
afterAll(async () => {
  await Promise.all([primary?.stop(), secondary?.stop()])
})
beforeEach(() => {
  h = createHarness()
})
afterEach(async () => {
  await h.close()
})

describe('same repository', () => {
  it('tags with one manifest PUT per destination and nothing else written', async () => {
    const image = buildImage()
    await pushImage(primary.url, 'app/same', 'build-1', image)
    const result = await h.run({ source: `${primary.host}/app/same:build-1`, to: ['dev', 'staging', 'prod'] })

    expect(result.digest).toBe(image.digest)
    expect(result.image).toBe(`${primary.host}/app/same@${image.digest}`)
    expect(result.destinations.map((d) => [d.reference, d.status, d.previousDigest])).toEqual([
      [`${primary.host}/app/same:dev`, 'created', null],
      [`${primary.host}/app/same:staging`, 'created', null],
      [`${primary.host}/app/same:prod`, 'created', null]
    ])
    for (const tag of ['dev', 'staging', 'prod']) expect(await tagDigest(primary.url, 'app/same', tag)).toBe(image.digest)
    expect(
      h
        .writes()
        .map((w) => `${w.method} ${w.path}`)
        .sort()
    ).toEqual(['dev', 'prod', 'staging'].map((t) => `PUT /v2/app/same/manifests/${t}`))
    // ping, resolve, then per destination a check (a GET: what it held is hashed) and a read-back: nothing else.
    expect(h.requests.filter((r) => r.method !== 'PUT').map((r) => r.method)).toEqual(['GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'GET'])
  })

  it('reports a moved tag with its previous digest, and a re-run writes nothing', async () => {
    const first = buildImage()
    const second = buildImage()
    await pushImage(primary.url, 'app/move', 'one', first)
    await pushImage(primary.url, 'app/move', 'two', second)
    await h.run({ source: `${primary.host}/app/move:one`, to: ['staging'] })

    const moved = await h.run({ source: `${primary.host}/app/move:two`, to: ['staging'] })
    expect(moved.destinations[0]).toMatchObject({ status: 'moved', previousDigest: first.digest, digest: second.digest })

    const again = createHarness()
    try {
      const rerun = await again.run({ source: `${primary.host}/app/move:two`, to: ['staging'] })
      expect(rerun.destinations[0]).toMatchObject({ status: 'unchanged', previousDigest: second.digest })
      expect(again.writes()).toEqual([])
      // Ping, resolve, and the destination's check, whose hashed bytes stand in for a read-back.
      expect(again.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v2/', 'GET /v2/app/move/manifests/two', 'GET /v2/app/move/manifests/staging'])
    } finally {
      await again.close()
    }
  })

  it('promotes by digest, and by tag@digest (the digest wins)', async () => {
    const image = buildImage()
    const other = buildImage()
    await pushImage(primary.url, 'app/pinned', 'build', image)
    await pushImage(primary.url, 'app/pinned', 'other', other)
    const byDigest = await h.run({ source: `${primary.host}/app/pinned@${image.digest}`, to: ['a'] })
    expect(byDigest.digest).toBe(image.digest)
    const both = await h.run({ source: `${primary.host}/app/pinned:other@${image.digest}`, to: ['b'] })
    expect(both.digest).toBe(image.digest)
    expect(await tagDigest(primary.url, 'app/pinned', 'b')).toBe(image.digest)
  })
})

describe('another repository in the same registry', () => {
  it('mounts every blob instead of uploading it, and keeps every platform of an index', async () => {
    const index = buildMultiArch(3)
    await pushImage(primary.url, 'team/src', 'build', index)
    const result = await h.run({ source: `${primary.host}/team/src:build`, to: [`${primary.host}/team/dst:staging`] })

    expect(result.digest).toBe(index.digest)
    expect(result.platforms).toEqual(['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'])
    expect(result.copied.blobsMounted).toBe(6)
    expect(result.copied.blobsUploaded).toBe(0)
    expect(h.writes().filter((w) => w.method === 'PUT' && w.path.includes('/blobs/'))).toEqual([])
    expect(
      h
        .writes()
        .filter((w) => w.method === 'POST')
        .every((w) => w.path.includes('mount=') && w.path.includes('from=team%2Fsrc'))
    ).toBe(true)
    expect(await tagDigest(primary.url, 'team/dst', 'staging')).toBe(index.digest)
    for (const child of index.children) expect(await tagDigest(primary.url, 'team/dst', child.digest)).toBe(child.digest)
  })
})

describe('another registry', () => {
  it('streams every blob of a Docker v2 image with a layer of tens of MiB, skipping none, and the digest is kept', async () => {
    const image = buildImage({ flavor: 'docker', layerSizes: [24 * 1024 * 1024, 4096] })
    await pushImage(primary.url, 'big/app', 'v1', image)
    const result = await h.run({ source: `${primary.host}/big/app:v1`, to: [`${secondary.host}/prod/app:v1`] })

    expect(result.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
    expect(result.copied.blobsUploaded).toBe(3)
    expect(result.copied.bytesUploaded).toBe(image.blobs.reduce((n, b) => n + b.size, 0))
    expect(await tagDigest(secondary.url, 'prod/app', 'v1')).toBe(image.digest)
    for (const blob of image.blobs) expect(await hasBlob(secondary.url, 'prod/app', blob.digest)).toBe(true)
  })

  it('skips the blobs the destination already has', async () => {
    const image = buildImage({ layerSizes: [2048, 4096] })
    await pushImage(primary.url, 'skip/app', 'v1', image)
    await pushImage(secondary.url, 'skip/app', 'base', { ...image, children: [] })
    const target = buildMultiArch(2, { flavor: 'docker' })
    await pushImage(primary.url, 'skip/multi', 'b', target)
    const again = await h.run({ source: `${primary.host}/skip/app:v1`, to: [`${secondary.host}/skip/app:copy`] })
    expect(again.copied).toMatchObject({ blobsUploaded: 0, blobsPresent: 3 })
    const multi = await h.run({ source: `${primary.host}/skip/multi:b`, to: [`${secondary.host}/skip/multi:b`] })
    expect(multi.copied.blobsUploaded).toBe(4)
    expect(await tagDigest(secondary.url, 'skip/multi', 'b')).toBe(target.digest)
  })

  it('copies to several destinations across registries and repositories in one run', async () => {
    const index = buildMultiArch(2)
    await pushImage(primary.url, 'fan/out', 'rc', index)
    const result = await h.run({
      source: `${primary.host}/fan/out:rc`,
      to: ['staging', `${primary.host}/fan/mirror:staging`, `${secondary.host}/fan/out:staging`, `${secondary.host}/fan/bydigest`]
    })
    expect(result.destinations.map((d) => d.status)).toEqual(['created', 'created', 'created', 'created'])
    expect(result.destinations[3]!.reference).toBe(`${secondary.host}/fan/bydigest`)
    expect(await tagDigest(primary.url, 'fan/out', 'staging')).toBe(index.digest)
    expect(await tagDigest(primary.url, 'fan/mirror', 'staging')).toBe(index.digest)
    expect(await tagDigest(secondary.url, 'fan/out', 'staging')).toBe(index.digest)
    expect(await tagDigest(secondary.url, 'fan/bydigest', index.digest)).toBe(index.digest)
  })
})

describe('progress', () => {
  it('is told after each blob lands, up to every blob and byte of the image, per destination repository', async () => {
    const image = buildMultiArch(2)
    await pushImage(primary.url, 'app/progress', 'build', image)
    const seen: { repository: string; blobsDone: number; blobs: number; bytesDone: number; bytes: number }[] = []
    const harness = createHarness({ deps: { progress: (p) => seen.push(p) } })
    try {
      await harness.run({ source: `${primary.host}/app/progress:build`, to: [`${secondary.host}/app/progress:prod`] })
    } finally {
      await harness.close()
    }
    const blobs = new Map(image.children.flatMap((c) => c.blobs).map((b) => [b.digest, b.size]))
    const bytes = [...blobs.values()].reduce((n, s) => n + s, 0)
    expect(seen.map((p) => p.blobsDone)).toEqual([...Array(blobs.size).keys()].map((i) => i + 1))
    expect(seen.at(-1)).toEqual({ repository: `${secondary.host}/app/progress`, blobsDone: blobs.size, blobs: blobs.size, bytesDone: bytes, bytes })
  })
})

describe('OCI image layouts', () => {
  it('promotes from a layout into a registry and back out into another layout, same digest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-promote-layout-'))
    const index = buildMultiArch(2)
    await writeLayout(join(dir, 'src'), index, 'build')
    const up = await h.run({ source: `oci:${join(dir, 'src')}:build`, to: [`${primary.host}/from/layout:dev`] })
    expect(up.digest).toBe(index.digest)
    expect(await tagDigest(primary.url, 'from/layout', 'dev')).toBe(index.digest)

    const down = await h.run({ source: `${primary.host}/from/layout:dev`, to: [`oci:${join(dir, 'out')}:prod`] })
    expect(down.destinations[0]).toMatchObject({ status: 'created', digest: index.digest })
    const back = await h.run({ source: `oci:${join(dir, 'out')}:prod`, to: ['again'] })
    expect(back.digest).toBe(index.digest)
  })
})

describe('checks before any write', () => {
  it('fails on a wrong expected digest and writes nothing', async () => {
    const image = buildImage()
    await pushImage(primary.url, 'chk/digest', 'build', image)
    const wrong = `sha256:${'0'.repeat(64)}`
    await expect(
      h.run({ source: `${primary.host}/chk/digest:build`, expectedDigest: wrong, to: ['prod', `${secondary.host}/chk/digest:prod`] })
    ).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' })
    expect(h.writes()).toEqual([])
    expect(await tagDigest(primary.url, 'chk/digest', 'prod')).toBeUndefined()
  })

  it('refuses to move an immutable tag, and writes none of the other destinations either', async () => {
    const released = buildImage()
    const candidate = buildImage()
    await pushImage(primary.url, 'chk/immutable', 'v1.2.3', released)
    await pushImage(primary.url, 'chk/immutable', 'rc', candidate)
    const attempt = h.run({ source: `${primary.host}/chk/immutable:rc`, to: ['staging', 'v1.2.3'], immutableTags: DEFAULT_IMMUTABLE_TAGS })
    await expect(attempt).rejects.toMatchObject({ code: 'IMMUTABLE_TAG' })
    await expect(attempt).rejects.toThrow(/v1\.2\.3 already points at sha256:/)
    expect(h.writes()).toEqual([])
    expect(await tagDigest(primary.url, 'chk/immutable', 'v1.2.3')).toBe(released.digest)
    expect(await tagDigest(primary.url, 'chk/immutable', 'staging')).toBeUndefined()

    // Writing the same digest again is fine.
    const same = await h.run({ source: `${primary.host}/chk/immutable:v1.2.3`, to: ['v1.2.3'], immutableTags: DEFAULT_IMMUTABLE_TAGS })
    expect(same.destinations[0]!.status).toBe('unchanged')
  })

  it('names a missing image clearly', async () => {
    await expect(h.run({ source: `${primary.host}/chk/none:nope`, to: ['x'] })).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      message: expect.stringContaining(`image ${primary.host}/chk/none:nope was not found`)
    })
  })

  it('fails fast and clearly when a registry is unreachable', async () => {
    const port = await freePort()
    const error = await h.run({ source: `127.0.0.1:${port}/gone/app:v1`, to: ['x'] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PromoteError)
    expect((error as PromoteError).code).toBe('NETWORK')
    expect((error as PromoteError).message).toMatch(new RegExp(`GET http://127.0.0.1:${port}/v2/: .*ECONNREFUSED`))
  })

  it('fails when a destination registry is unreachable, after writing nothing anywhere', async () => {
    const image = buildImage()
    await pushImage(primary.url, 'chk/half', 'build', image)
    const port = await freePort()
    await expect(h.run({ source: `${primary.host}/chk/half:build`, to: ['staging', `127.0.0.1:${port}/x/y:staging`] })).rejects.toMatchObject({
      code: 'NETWORK'
    })
    expect(h.writes()).toEqual([])
  })
})

describe('plan and verify modes', () => {
  it('plan reports what would change and writes nothing', async () => {
    const image = buildImage()
    await pushImage(primary.url, 'modes/app', 'build', image)
    await pushImage(primary.url, 'modes/app', 'dev', image)
    const plan = await h.run({ source: `${primary.host}/modes/app:build`, to: ['dev', 'prod', `${secondary.host}/modes/app:prod`], mode: 'plan' })
    expect(plan.destinations.map((d) => d.status)).toEqual(['unchanged', 'planned', 'planned'])
    expect(h.writes()).toEqual([])
    expect(await tagDigest(primary.url, 'modes/app', 'prod')).toBeUndefined()
  })

  it('verify succeeds only when every destination already holds the digest', async () => {
    const image = buildImage()
    const other = buildImage()
    await pushImage(primary.url, 'modes/verify', 'build', image)
    await pushImage(primary.url, 'modes/verify', 'prod', image)
    await pushImage(primary.url, 'modes/verify', 'staging', other)
    const ok = await h.run({ source: `${primary.host}/modes/verify:build`, to: ['prod'], mode: 'verify' })
    expect(ok.destinations[0]!.status).toBe('verified')
    const error = await h.run({ source: `${primary.host}/modes/verify:build`, to: ['prod', 'staging', 'absent'], mode: 'verify' }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'NOT_PROMOTED' })
    expect((error as Error).message).toContain(`modes/verify:staging is ${other.digest}`)
    expect((error as Error).message).toContain('modes/verify:absent is absent')
    expect(h.writes()).toEqual([])
  })
})

describe('verify-blobs', () => {
  it('downloads and hashes every blob of every platform', async () => {
    const index = buildMultiArch(2, { layerSizes: [100_000] })
    await pushImage(primary.url, 'blobs/ok', 'b', index)
    const result = await h.run({ source: `${primary.host}/blobs/ok:b`, to: ['checked'], verifyBlobs: true })
    const expected = index.children.flatMap((c) => c.blobs)
    expect(result.blobsVerified).toEqual({ count: expected.length, bytes: expected.reduce((n, b) => n + b.size, 0) })
  })
})
