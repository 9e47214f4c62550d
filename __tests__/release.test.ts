// A release: many images promoted as one unit, all or nothing, on the real registry. Every check of every image
// runs before the first write; a failed tag write puts back every tag the run moved, across images; base layers the
// images share are sent once per destination registry; a matrix can stage shards and one step then moves the tags.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createPublicKey } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { baseLayer, buildImage, type Image } from '../scripts/lib/images.ts'
import { runAction } from '../scripts/lib/runner.ts'
import { PromoteError } from '../src/errors.ts'
import { getInputs, loadInputs } from '../src/inputs.ts'
import type { PromotionResult } from '../src/promote.ts'
import { renderSummary } from '../src/summary.ts'
import { signaturePredicateTypes } from '../src/verify/policy.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { immutableTags } from './support/families.ts'
import { createHarness } from './support/harness.ts'
import { ociError, startRegistryProxy, targetOf } from './support/registry-proxy.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { GITHUB_ISSUER, TestCA, TestRekor, keyPairSigner, pushLegacyTag, signatureLayer, simpleSigningPayload, trustedRootJson } from './support/sigstore.ts'

let source: RunningRegistry
let target: RunningRegistry
let seq = 0

beforeAll(async () => {
  ;[source, target] = await Promise.all([startRegistry(), startRegistry()])
})
afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()])
})

/** `count` services built together: two base layers shared by all, one layer of each service's own. */
async function seedRelease(count: number): Promise<{ name: string; services: { repo: string; image: Image }[] }> {
  const name = `rel${++seq}`
  const base = [baseLayer(64 * 1024), baseLayer(32 * 1024)]
  const services = Array.from({ length: count }, (_, i) => ({ repo: `${name}/svc${i + 1}`, image: buildImage({ baseLayers: base, layerSizes: [4096] }) }))
  await Promise.all(services.map((s) => pushImage(source.url, s.repo, 'build', s.image)))
  return { name, services }
}

const manifestAt = async (registry: RunningRegistry, repo: string, image: Image): Promise<boolean> =>
  (await fetch(`${registry.url}/v2/${repo}/manifests/${image.digest}`, { method: 'HEAD', headers: { accept: image.mediaType } })).status === 200

describe('the action with a release document', () => {
  it('promotes a 5-image release to another registry, and lists each image in the release and promoted outputs', async () => {
    const { services } = await seedRelease(5)
    const release = services.map((s) => ({ image: `${source.host}/${s.repo}:build`, digest: s.image.digest, to: [`${target.host}/${s.repo}:prod`] }))
    const run = await runAction({ release: JSON.stringify(release), 'verify-signature': 'false' })
    expect(run.stdout).not.toContain('::error::')
    expect(run.exitCode).toBe(0)
    for (const s of services) expect(await tagDigest(target.url, s.repo, 'prod')).toBe(s.image.digest)
    expect(JSON.parse(run.outputs['release']!)).toEqual(
      services.map((s) => ({ source: `${source.host}/${s.repo}:build`, image: `${source.host}/${s.repo}@${s.image.digest}`, digest: s.image.digest }))
    )
    const promoted = JSON.parse(run.outputs['promoted']!) as { reference: string; image: string; status: string }[]
    expect(promoted.map((p) => [p.reference, p.image, p.status])).toEqual(
      services.map((s) => [`${target.host}/${s.repo}:prod`, `${source.host}/${s.repo}@${s.image.digest}`, 'created'])
    )
    expect(run.outputs['digest']).toBe('')
    expect(run.outputs['image']).toBe('')
    expect(run.summary).toContain('### oci-promote: Release Promoted')
    expect(run.summary).toContain('**Release** of 5 images.')
    expect(run.summary.split('\n').filter((l) => l.includes('/svc')).length).toBe(5)
  })

  it("takes the step's to for entries without one, from a YAML file in the workspace", async () => {
    const { services } = await seedRelease(3)
    const dir = await mkdtemp(join(process.cwd(), '.release-test-'))
    try {
      const file = join(dir, 'release.yaml')
      await writeFile(file, services.map((s) => `- image: ${source.host}/${s.repo}:build\n`).join(''))
      const run = await runAction({ release: file.slice(process.cwd().length + 1), to: 'staging', 'verify-signature': 'false' })
      expect(run.exitCode).toBe(0)
      for (const s of services) expect(await tagDigest(source.url, s.repo, 'staging')).toBe(s.image.digest)
    } finally {
      await import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true, force: true }))
    }
  })

  it('stages a release in 3 shards without moving a tag, then one promote only writes the tags', async () => {
    const { services } = await seedRelease(5)
    const release = JSON.stringify(services.map((s) => ({ image: `${source.host}/${s.repo}:build`, to: [`${target.host}/${s.repo}:prod`] })))
    for (const shard of ['1/3', '2/3', '3/3']) {
      const run = await runAction({ release, mode: 'stage', shard, 'verify-signature': 'false' })
      expect(run.exitCode).toBe(0)
      expect(run.stdout).toContain(`release of 5 images (shard ${shard}`)
    }
    for (const s of services) {
      expect(await tagDigest(target.url, s.repo, 'prod')).toBeUndefined()
      expect(await manifestAt(target, s.repo, s.image)).toBe(true)
    }
    const final = await runAction({ release, 'verify-signature': 'false' }, { RUNNER_DEBUG: '1' })
    expect(final.exitCode).toBe(0)
    for (const s of services) expect(await tagDigest(target.url, s.repo, 'prod')).toBe(s.image.digest)
    // Everything was in place: no upload started (a mount answered 201 moves no bytes), and each image's one write is its tag.
    const writes = final.stdout.split('\n').filter((l) => /^::debug::(PUT|POST|PATCH) /.test(l))
    expect(writes.filter((l) => l.includes('/blobs/') && !l.endsWith('-> 201'))).toEqual([])
    expect(writes.filter((l) => l.includes('/manifests/prod')).length).toBe(5)
  })
})

describe('all or nothing', () => {
  it('images failing their signature check stop the release before anything is written, each of them named', async () => {
    const { services } = await seedRelease(4)
    const key = await keyPairSigner()
    for (const s of services.slice(0, 2))
      await pushLegacyTag(source.url, s.repo, s.image.digest, 'sig', [signatureLayer(key, simpleSigningPayload(s.repo, s.image.digest))])
    const [ca, rekor] = await Promise.all([TestCA.create(), TestRekor.create()])
    const root = join(await mkdtemp(join(tmpdir(), 'oci-promote-release-')), 'trusted_root.json')
    await writeFile(root, JSON.stringify(trustedRootJson({ ca, rekor })))
    const verifier = new SignatureVerifier(
      { publicKeys: [createPublicKey(key.publicKeyPem)], issuer: GITHUB_ISSUER, signedPlatforms: 'index', predicateTypes: signaturePredicateTypes() },
      new TrustRoot({ trustedRootPath: root })
    )
    const h = createHarness({ verifier })
    try {
      const failed = await h
        .release(services.map((s) => ({ source: `${source.host}/${s.repo}:build`, to: [`${target.host}/${s.repo}:prod`] })))
        .catch((e: unknown) => e)
      expect(failed).toBeInstanceOf(PromoteError)
      expect((failed as PromoteError).code).toBe('SIGNATURE_NOT_VERIFIED')
      // Both unsigned images in one error, so one run tells what to fix.
      expect((failed as Error).message).toMatch(/^2 of 4 images failed their checks, so nothing was written: /)
      for (const s of services.slice(2)) expect((failed as Error).message).toContain(`${source.host}/${s.repo}:build: SIGNATURE_NOT_VERIFIED: `)
      expect(h.writes()).toEqual([])
    } finally {
      await h.close()
    }
    for (const s of services) expect(await tagDigest(target.url, s.repo, 'prod')).toBeUndefined()
  })

  it('a tag write refused mid-way puts back every tag the run moved, across images; a re-run finishes the job', async () => {
    const { services } = await seedRelease(5)
    const old = buildImage()
    for (const s of services) await pushImage(target.url, s.repo, 'prod', old)
    // The fourth service's prod is immutable where it lives (as ECR answers), so its write fails after others landed.
    const refusing = await startRegistryProxy(targetOf(target.host), [immutableTags('ecr', ['prod'], services[3]!.repo)])
    const requests = (host: string) => services.map((s) => ({ source: `${source.host}/${s.repo}:build`, to: [`${host}/${s.repo}:prod`] }))
    const h = createHarness()
    try {
      const failed = await h.release(requests(refusing.host)).catch((e: unknown) => e)
      expect((failed as Error).message).toMatch(/TAG_INVALID/)
      expect((failed as Error).message).toMatch(/Tags already moved were put back/)
      for (const s of services) expect(await tagDigest(target.url, s.repo, 'prod')).toBe(old.digest)
      // The content stayed; the re-run (the tag no longer refused) finds it and moves every tag.
      const results = await h.release(requests(target.host))
      expect(results.map((r) => r.destinations[0]!.status)).toEqual(services.map(() => 'moved'))
      expect(results.reduce((n, r) => n + r.copied.blobsUploaded, 0)).toBe(0)
    } finally {
      await h.close()
      await refusing.stop()
    }
    for (const s of services) expect(await tagDigest(target.url, s.repo, 'prod')).toBe(s.image.digest)
  })
})

describe('all or nothing after the writes', () => {
  it("a tag that cannot be read back puts back every image's tags, not only its own", async () => {
    const { services } = await seedRelease(3)
    const old = buildImage()
    for (const s of services) await pushImage(target.url, s.repo, 'prod', old)
    const unreadable = `/v2/${services[1]!.repo}/manifests/prod`
    let written = false
    // After its tag is written, the second service's tag answers only 503: its move cannot be confirmed.
    const flaky = await startRegistryProxy(targetOf(target.host), [
      {
        answer(req, res) {
          if (req.url !== unreadable) return false
          if (req.method === 'PUT') written = true
          if (!written || req.method === 'PUT') return false
          return ociError(res, 503, 'UNAVAILABLE', 'try again later')
        }
      }
    ])
    const h = createHarness()
    try {
      const failed = await h
        .release(services.map((s) => ({ source: `${source.host}/${s.repo}:build`, to: [`${flaky.host}/${s.repo}:prod`] })))
        .catch((e: unknown) => e)
      expect((failed as Error).message).toMatch(/could not read back .*svc2:prod after writing/)
      for (const s of services) expect(await tagDigest(target.url, s.repo, 'prod')).toBe(old.digest)
    } finally {
      await h.close()
      await flaky.stop()
    }
  })
})

describe('economy', () => {
  it('base layers the images share are uploaded once per destination registry and mounted into the other repositories', async () => {
    const { services } = await seedRelease(5)
    const h = createHarness()
    try {
      const results = await h.release(services.map((s) => ({ source: `${source.host}/${s.repo}:build`, to: [`${target.host}/${s.repo}:prod`] })))
      const base = services[0]!.image.blobs.slice(1, 3).map((b) => b.digest)
      const uploads = h.requests.filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'))
      for (const digest of base) expect(uploads.filter((r) => decodeURIComponent(r.path).includes(`digest=${digest}`)).length).toBe(1)
      const mounts = h.requests.filter((r) => r.method === 'POST' && r.path.includes('mount='))
      for (const digest of base) expect(mounts.filter((r) => decodeURIComponent(r.path).includes(`mount=${digest}`)).length).toBe(4)
      // One token exchange and one ping per registry, whatever the number of images: the clients are shared.
      expect(h.requests.filter((r) => r.path === '/v2/').length).toBe(2)
      expect(results.reduce((n, r) => n + r.copied.blobsMounted, 0)).toBe(8)
    } finally {
      await h.close()
    }
  })
})

describe('bad release documents: a clear error naming the entry, before any request', () => {
  const inputs = (values: Record<string, string>) => loadInputs({ get: (name) => values[name] ?? '', secret: () => {} })
  const one = (extra: object = {}) => JSON.stringify([{ image: 'ghcr.io/acme/api:build', to: ['prod'], ...extra }])
  it.each([
    [{ release: '[{"image": "ghcr.io/acme/api:build"' }, /input "release": release does not parse as YAML or JSON/],
    [{ release: '- image: [unclosed' }, /does not parse as YAML or JSON/],
    [{ release: '[]' }, /must be a non-empty list of images/],
    [{ release: '- to: [prod]' }, /release entry 1 has no image/],
    [{ release: '- image: ghcr.io/acme/api:build\n  tags: [prod]', to: 'prod' }, /release entry 1 has "tags"; an entry has only image, digest and to/],
    [{ release: one({ digest: 'sha256:nope' }) }, /"sha256:nope" is not a sha256 digest/],
    [{ release: '- image: ghcr.io/acme/API:build\n  to: prod' }, /release entry 1 \(ghcr.io\/acme\/API:build\): .*lowercase/],
    [{ release: '- image: ghcr.io/acme/api:build' }, /release entry 1 \(ghcr.io\/acme\/api:build\) has no to, and the step's to is empty/],
    [
      { release: '- image: ghcr.io/acme/api:build\n  to: [ghcr.io/acme/web:prod]\n- image: ghcr.io/acme/web:build\n  to: prod' },
      /ghcr.io\/acme\/web:prod is a destination of both release entry 1 and release entry 2/
    ],
    [{ release: one(), image: 'ghcr.io/acme/api:build' }, /input "image": cannot be combined with release/],
    [{ release: one(), digest: `sha256:${'a'.repeat(64)}` }, /input "digest": cannot be combined with release/],
    [{ release: one(), mode: 'rollback', environment: 'prod', shard: '1/2' }, /input "shard": cannot be combined with mode: rollback/],
    [{ release: one(), mode: 'stage', shard: '4/3' }, /input "shard": "4\/3" is not k\/n/],
    [{ release: one(), mode: 'stage', shard: '0/2' }, /is not k\/n/],
    [{ release: one(), shard: '1/2' }, /input "shard": cannot be combined with mode: promote/],
    [{ image: 'ghcr.io/acme/api:build', to: 'prod', shard: '1/2' }, /input "shard": needs release/],
    [{ release: '../outside.yaml' }, /outside the working directory/],
    [{ release: 'missing-release.yaml' }, /neither a release document .* nor a readable file/]
  ])('%j', async (values, message) => {
    await expect(inputs({ 'verify-signature': 'false', ...values })).rejects.toThrow(message)
  })

  it('a shard takes entries k, k+n, …: three shards cover the release once; JSON needs no YAML parser', () => {
    const release = JSON.stringify(Array.from({ length: 7 }, (_, i) => ({ image: `ghcr.io/acme/svc${i}:build`, to: ['prod'] })))
    const shards = ['1/3', '2/3', '3/3'].map((shard) =>
      getInputs({ get: (n) => ({ release, shard, mode: 'stage', 'verify-signature': 'false' })[n] ?? '', secret: () => {} })
    )
    const names = shards.map((s) => s.images.map((i) => (i.image.kind === 'registry' ? i.image.repository : '')))
    expect(names).toEqual([
      ['acme/svc0', 'acme/svc3', 'acme/svc6'],
      ['acme/svc1', 'acme/svc4'],
      ['acme/svc2', 'acme/svc5']
    ])
    expect(shards[0]!.release).toEqual({ size: 7, shard: { index: 1, count: 3 } })
  })
})

it('the job summary of a release of any size stays under the 1 MiB a step summary may hold, and says what it left out', () => {
  const result = (i: number): PromotionResult => ({
    mode: 'promote',
    source: `registry.example.com/${'team/'.repeat(20)}service-${i}:build`,
    digest: `sha256:${'a'.repeat(64)}`,
    image: `registry.example.com/service-${i}@sha256:${'a'.repeat(64)}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    platforms: [],
    destinations: ['staging', 'prod', 'prod-eu'].map((tag) => ({
      reference: `registry.example.com/${'team/'.repeat(20)}service-${i}:${tag}`,
      digest: `sha256:${'a'.repeat(64)}`,
      previousDigest: `sha256:${'b'.repeat(64)}`,
      status: 'moved' as const,
      copy: 'same-registry' as const
    })),
    copied: { blobsUploaded: 0, blobsMounted: 3, blobsPresent: 0, bytesUploaded: 0, manifestsWritten: 3 },
    verified: [],
    attachmentsCopied: 0,
    notes: [],
    records: []
  })
  const summary = renderSummary({ results: Array.from({ length: 3000 }, (_, i) => result(i)), release: { size: 3000 }, signaturesChecked: false, usage: [] })
  expect(Buffer.byteLength(summary)).toBeLessThan(1024 * 1024)
  expect(summary).toMatch(/\*\*\d+ more destinations\*\* are not shown: a step summary holds at most 1 MiB/)
})
