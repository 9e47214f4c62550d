// Retention on the real registry (deletion enabled): a repository of 15 builds, environment and release tags,
// history tags, signatures, a referrer and an index. What goes, what stays and why; dry-run and max-deletions write
// nothing; a re-run deletes nothing more.
import { beforeEach, afterEach, describe, expect, it } from '@jest/globals'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildImage, buildMultiArch, type Image } from '../scripts/lib/images.ts'
import { runAction } from '../scripts/lib/runner.ts'
import { PromoteError } from '../src/errors.ts'
import { historyTag } from '../src/history-tags.ts'
import { githubPackages, type PackageVersions } from '../src/packages.ts'
import { prune, type PruneRequest } from '../src/prune.ts'
import { startGithubPackages } from './support/fake-github-packages.ts'
import { createPublicKey } from 'node:crypto'
import { PROMOTION_PREDICATE_TYPE, keyRecordSigner } from '../src/records.ts'
import { ImageVerifier } from '../src/verify/index.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { createHarness } from './support/harness.ts'
import { ociError, startRegistryProxy, targetOf } from './support/registry-proxy.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import {
  TestCA,
  TestRekor,
  dsseBundle,
  inTotoStatement,
  keyPairSigner,
  pushBundleReferrer,
  pushLegacyTag,
  signatureLayer,
  simpleSigningPayload
} from './support/sigstore.ts'

const REPO = 'ret/app'
const DAY = 86_400_000
// The action runs on the real clock, so the fixture's ages are counted from it too.
const NOW = new Date()
const ago = (days: number): string => new Date(NOW.getTime() - days * DAY).toISOString()

let registry: RunningRegistry
let builds: Image[]
let index: Image
let untagged: Image
let referrer: string

/**
 * build-i was made 45 - 2i days ago (build-1: 43 days, build-7: 31, build-8: 29). prod is build-5 and held build-2,
 * 3 and 4 before (history tags); staging is build-12; v1.0.0 is build-6. build-1 and build-5 carry a cosign signature,
 * build-2 a Sigstore bundle referrer; build-16 is a two-platform index made 40 days ago; one image 42 days old has a
 * signature and no tag at all.
 */
beforeEach(async () => {
  registry = await startRegistry()
  builds = Array.from({ length: 15 }, (_, i) => buildImage({ created: ago(45 - 2 * (i + 1)), label: `build ${i + 1}` }))
  for (const [i, image] of builds.entries()) await pushImage(registry.url, REPO, `build-${i + 1}`, image)
  const at = (n: number): Image => builds[n - 1]!
  await pushImage(registry.url, REPO, 'prod', at(5))
  for (const n of [2, 3, 4]) await pushImage(registry.url, REPO, historyTag('prod', at(n).digest), at(n))
  await pushImage(registry.url, REPO, 'staging', at(12))
  await pushImage(registry.url, REPO, 'v1.0.0', at(6))
  const key = await keyPairSigner()
  for (const n of [1, 5]) await pushLegacyTag(registry.url, REPO, at(n).digest, 'sig', [signatureLayer(key, simpleSigningPayload(REPO, at(n).digest))])
  const [ca, rekor] = await Promise.all([TestCA.create(), TestRekor.create()])
  const signer = await ca.issue('https://github.com/acme/app/.github/workflows/build.yml@refs/heads/main')
  referrer = await pushBundleReferrer(
    registry.url,
    REPO,
    at(2),
    dsseBundle(signer, inTotoStatement(at(2).digest, 'https://slsa.dev/provenance/v1'), rekor),
    'https://slsa.dev/provenance/v1'
  )
  index = buildMultiArch(2, { created: ago(40) })
  await pushImage(registry.url, REPO, 'build-16', index)
  untagged = buildImage({ created: ago(42) })
  await pushImage(registry.url, REPO, untagged.digest, untagged)
  await pushLegacyTag(registry.url, REPO, untagged.digest, 'sig', [signatureLayer(key, simpleSigningPayload(REPO, untagged.digest))])
})
afterEach(async () => {
  await registry?.stop()
})

const RULES: PruneRequest = {
  pruneTags: /^(?:build-.*)$/,
  immutableTags: /^v?\d+\.\d+\.\d+$/,
  olderThanMs: 30 * DAY,
  keepLast: 2,
  rollbackWindow: { count: 2 },
  dryRun: false,
  maxDeletions: 100,
  concurrency: 4,
  now: NOW
}

async function run(rules: Partial<PruneRequest> = {}, versions?: PackageVersions) {
  const h = createHarness()
  try {
    const repository = h.stores.repository({ kind: 'registry', registry: registry.host, repository: REPO })
    const result = await prune(repository, { ...RULES, ...rules }, { log: SILENT, ...(versions ? { versions } : {}) })
    return { result, writes: h.writes() }
  } finally {
    await h.close()
  }
}

const exists = async (digest: string, mediaType: string): Promise<boolean> =>
  (await fetch(`${registry.url}/v2/${REPO}/manifests/${digest}`, { method: 'HEAD', headers: { accept: mediaType } })).status === 200
const SILENT = { info: () => {}, debug: () => {} }
const sigTag = (image: Image): string => `${image.digest.replace(':', '-')}.sig`

describe('mode: prune', () => {
  it('deletes old builds no rule keeps, with their signatures, referrers and platforms; keeps prod, its rollback window, releases and the newest', async () => {
    const at = (n: number): Image => builds[n - 1]!
    const { result } = await run()
    const status = new Map(result.digests.map((d) => [d.digest, d]))
    const deleted = result.digests.filter((d) => d.status === 'deleted').map((d) => d.digest)
    expect(new Set(deleted)).toEqual(new Set([at(1).digest, at(2).digest, index.digest, untagged.digest]))
    expect(status.get(at(5).digest)!.reason).toMatch(/tag prod is kept/)
    expect(status.get(at(4).digest)!.reason).toMatch(/rollback window of prod \(last 2, history tags\)/)
    expect(status.get(at(6).digest)!.reason).toMatch(/tag v1\.0\.0 is kept/)
    expect(status.get(at(12).digest)!.reason).toMatch(/tag staging is not matched by prune-tags/)
    expect(status.get(at(3).digest)!.reason).toMatch(/keep-last/)
    expect(status.get(at(7).digest)!.reason).toMatch(/keep-last/)
    expect(status.get(at(9).digest)!.reason).toBe('newer than older-than')

    for (const image of [at(1), at(2), index, untagged]) expect(await exists(image.digest, image.mediaType)).toBe(false)
    for (const child of index.children) expect(await exists(child.digest, child.mediaType)).toBe(false)
    expect(await tagDigest(registry.url, REPO, sigTag(at(1)))).toBeUndefined()
    expect(await tagDigest(registry.url, REPO, sigTag(untagged))).toBeUndefined()
    expect(await tagDigest(registry.url, REPO, at(2).digest.replace(':', '-'))).toBeUndefined()
    // What stays, stays whole: prod and its signature, the window's history, the release, staging.
    expect(await tagDigest(registry.url, REPO, 'prod')).toBe(at(5).digest)
    expect(await tagDigest(registry.url, REPO, sigTag(at(5)))).toBeDefined()
    expect(await tagDigest(registry.url, REPO, historyTag('prod', at(4).digest))).toBe(at(4).digest)
    expect(await tagDigest(registry.url, REPO, 'v1.0.0')).toBe(at(6).digest)
    expect(await tagDigest(registry.url, REPO, 'staging')).toBe(at(12).digest)
    expect(result.attachmentsDeleted).toBeGreaterThanOrEqual(5)

    // A re-run finds nothing more to delete.
    const again = await run()
    expect(again.result.digests.filter((d) => d.status !== 'kept')).toEqual([])
  })

  it("a doomed image's fallback index that lists a kept image's signature does not take the signature along", async () => {
    const at = (n: number): Image => builds[n - 1]!
    const keptSignature = (await tagDigest(registry.url, REPO, sigTag(at(5))))!
    const size = Number(
      (await fetch(`${registry.url}/v2/${REPO}/manifests/${keptSignature}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).headers.get(
        'content-length'
      )
    )
    // Anyone who can push can write a fallback index; this one, on build-1 (which goes), names prod's signature.
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: keptSignature, size }]
    })
    const put = await fetch(`${registry.url}/v2/${REPO}/manifests/${at(1).digest.replace(':', '-')}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
      body: index
    })
    expect(put.status).toBe(201)
    const { result } = await run()
    expect(result.digests.find((d) => d.digest === at(1).digest)!.status).toBe('deleted')
    expect(await tagDigest(registry.url, REPO, sigTag(at(5)))).toBe(keptSignature)
  })

  it('a manifest that is not what it says (an index without manifests) is kept, and the rest is pruned', async () => {
    const broken = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json' }))
    const put = await fetch(`${registry.url}/v2/${REPO}/manifests/build-99`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
      body: broken
    })
    expect(put.status).toBe(201)
    const { result } = await run({ dryRun: true })
    expect(result.digests.find((d) => d.tags.includes('build-99'))!.reason).toBe('its manifest cannot be read')
    expect(result.digests.filter((d) => d.status === 'planned').length).toBe(4)
  })

  it('an environment tag too long for its history tags to hold it whole is still an environment, kept with its window', async () => {
    const at = (n: number): Image => builds[n - 1]!
    // 119 characters: its history tags are written under its first 110 (historyTag()), and must still be read as its.
    const long = `production-eu-west-1-${'x'.repeat(98)}`
    await pushImage(registry.url, REPO, long, at(3))
    await pushImage(registry.url, REPO, historyTag(long, at(2).digest), at(2))
    // Prune every old tag no rule keeps: only knowing the long tag as an environment keeps what it holds.
    const { result } = await run({ pruneTags: /^.*$/, keepLast: 0, rollbackWindow: { count: 2 }, dryRun: true })
    const status = new Map(result.digests.map((d) => [d.digest, d]))
    expect(status.get(at(3).digest)).toMatchObject({ status: 'kept', reason: `tag ${long} is kept (an environment or release tag)` })
    expect(status.get(at(2).digest)).toMatchObject({ status: 'kept', reason: `in the rollback window of ${long} (last 2, history tags)` })
    expect(status.get(at(1).digest)!.status).toBe('planned')
  })

  it('dry-run plans the same and writes nothing; max-deletions refuses before deleting anything', async () => {
    const dry = await run({ dryRun: true })
    expect(dry.result.digests.filter((d) => d.status === 'planned').length).toBe(4)
    expect(dry.writes).toEqual([])
    const refused = await run({ maxDeletions: 3 }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(PromoteError)
    expect((refused as Error).message).toMatch(/4 images would be deleted, more than max-deletions \(3\); nothing was deleted/)
    for (const image of [builds[0]!, index, untagged]) expect(await exists(image.digest, image.mediaType)).toBe(true)
  })

  it('the action: dry-run reports every digest in the pruned output and the summary, and bad prune inputs fail first', async () => {
    const common = { image: `${registry.host}/${REPO}`, mode: 'prune', 'prune-tags': 'build-.*', 'keep-last': '2', 'rollback-window': '2', 'dry-run': 'true' }
    const dry = await runAction(common)
    expect(dry.exitCode).toBe(0)
    const pruned = JSON.parse(dry.outputs['pruned']!) as { digest: string; status: string; reason: string; tags: string[] }[]
    expect(pruned.length).toBe(17)
    expect(new Set(pruned.filter((p) => p.status === 'planned').map((p) => p.digest))).toEqual(
      new Set([builds[0]!.digest, builds[1]!.digest, index.digest, untagged.digest])
    )
    expect(dry.summary).toContain('### oci-promote: Prune')
    expect(dry.summary).toMatch(/would be deleted \(dry-run: nothing was\)/)
    for (const [inputs, message] of [
      [{ image: `${registry.host}/${REPO}:prod` }, /mode: prune cleans a whole repository, so give it without tag or digest/],
      [{ 'older-than': '30 days' }, /"30 days" is not a duration/],
      [{ 'prune-tags': 'build-(' }, /input "prune-tags": "build-\(" is not a valid regular expression/],
      [{ 'keep-last': '-1' }, /input "keep-last": "-1" must be a whole number/],
      [{ 'rollback-window': '30d' }, /30d is a window in time, which only promotion records can measure/],
      [{ image: 'ghcr.io/acme/app' }, /mode: prune on ghcr.io lists and deletes through the GitHub Packages API, which needs a token/]
    ] as const) {
      const bad = await runAction({ ...common, ...inputs })
      expect(bad.exitCode).not.toBe(0)
      expect(bad.stdout).toMatch(message)
    }
  })

  it('ghcr.io through the GitHub Packages API: versions page by page, ages from updated_at, deletion by version id', async () => {
    const at = (n: number): Image => builds[n - 1]!
    const api = await startGithubPackages({
      owner: 'ret',
      ownerType: 'Organization',
      packageName: 'app',
      token: 'ghs_PackagesToken0123',
      registryUrl: registry.url,
      repository: REPO,
      pageSize: 7
    })
    try {
      // Every manifest of the repository is a version: tagged ones with their tags, and the untagged ones (the index's
      // platforms, the referrer, the image without a tag). GitHub knows when each changed; the builds' is their build time.
      const listed = (await (await fetch(`${registry.url}/v2/${REPO}/tags/list`)).json()) as { tags: string[] }
      const byDigest = new Map<string, string[]>()
      for (const tag of listed.tags) {
        const digest = (await tagDigest(registry.url, REPO, tag))!
        byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag])
      }
      const made = new Map([...builds.map((b, i) => [b.digest, ago(45 - 2 * (i + 1))] as const), [index.digest, ago(40)], [untagged.digest, ago(42)]])
      for (const [digest, tags] of byDigest) api.add(digest, tags, made.get(digest) ?? ago(1))
      for (const digest of [...index.children.map((c) => c.digest), referrer, untagged.digest]) api.add(digest, [], made.get(digest) ?? ago(50))

      const versions = githubPackages({ token: 'ghs_PackagesToken0123', apiUrl: api.url, repository: REPO })
      const { result, writes } = await run({}, versions)
      const deleted = result.digests.filter((d) => d.status === 'deleted').map((d) => d.digest)
      expect(new Set(deleted)).toEqual(new Set([at(1).digest, at(2).digest, index.digest, untagged.digest]))
      expect(result.repository).toBe('GitHub Packages ret/app')
      // Deleted through the API only, never with the registry's DELETE; the pages were all read.
      expect(writes.filter((w) => w.method === 'DELETE')).toEqual([])
      expect(api.requests.filter((r) => r.startsWith('GET page')).length).toBeGreaterThan(2)
      const gone = new Set([at(1).digest, at(2).digest, index.digest, untagged.digest, referrer, ...index.children.map((c) => c.digest)])
      expect([...gone].filter((digest) => api.versions.some((v) => v.name === digest))).toEqual([])
      expect(await tagDigest(registry.url, REPO, 'prod')).toBe(at(5).digest)
      expect(await tagDigest(registry.url, REPO, sigTag(at(5)))).toBeDefined()
      expect(await tagDigest(registry.url, REPO, sigTag(at(1)))).toBeUndefined()
      const again = await run({}, versions)
      expect(again.result.digests.filter((d) => d.status !== 'kept')).toEqual([])
    } finally {
      await api.stop()
    }
  })

  it('an OCI layout: old builds leave index.json, what is kept stays', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-promote-prune-layout-'))
    const h = createHarness()
    try {
      for (const [tag, n] of [
        ['build-1', 1],
        ['build-9', 9],
        ['release', 1]
      ] as const) {
        await h.run({ source: `${registry.host}/${REPO}:build-${n}`, to: [`oci:${dir}:${tag}`] })
      }
      const layout = h.stores.repository({ kind: 'layout', path: dir })
      const result = await prune(layout, { ...RULES, keepLast: 0 }, { log: SILENT })
      const by = new Map(result.digests.map((d) => [d.digest, d]))
      // build-1 is also "release", a tag prune-tags does not match: its digest stays; only build-9's age keeps it otherwise.
      expect(by.get(builds[0]!.digest)!.reason).toMatch(/tag release is not matched by prune-tags/)
      expect(by.get(builds[8]!.digest)!.reason).toBe('newer than older-than')
      await layout.deleteTag('release')
      const again = await prune(layout, { ...RULES, keepLast: 0 }, { log: SILENT })
      expect(again.digests.filter((d) => d.status === 'deleted').map((d) => d.digest)).toEqual([builds[0]!.digest])
      expect(await layout.listTags()).toEqual(['build-9'])
    } finally {
      await h.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('promotion records give the rollback window its dates: a digest that left the environment 2 days ago stays in a 7-day window', async () => {
    const releaser = await keyPairSigner()
    const signer = await keyRecordSigner(releaser.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())
    const recordVerifier = new ImageVerifier(
      new SignatureVerifier(
        {
          publicKeys: [createPublicKey(releaser.publicKeyPem)],
          issuer: 'unused',
          attestationType: PROMOTION_PREDICATE_TYPE,
          predicateTypes: [PROMOTION_PREDICATE_TYPE],
          signedPlatforms: 'index'
        },
        new TrustRoot({})
      )
    )
    // rel-a, rel-b, rel-c (built 60, 50 and 40 days ago) went to "live" 20, 10 and 2 days ago, each with its record.
    const releases = [60, 50, 40].map((days) => buildImage({ created: ago(days) }))
    for (const [i, image] of releases.entries()) {
      const tag = `rel-${'abc'[i]}`
      await pushImage(registry.url, REPO, tag, image)
      const h = createHarness({
        deps: { record: { environment: 'production', signer, run: { repository: 'acme/app' }, now: () => new Date(NOW.getTime() - [20, 10, 2][i]! * DAY) } }
      })
      try {
        await h.run({ source: `${registry.host}/${REPO}:${tag}`, to: ['live'] })
      } finally {
        await h.close()
      }
    }
    const rules = { pruneTags: /^(?:rel-.*)$/, keepLast: 0, rollbackWindow: { ms: 7 * DAY }, dryRun: true }
    const h = createHarness()
    try {
      const repository = h.stores.repository({ kind: 'registry', registry: registry.host, repository: REPO })
      const withRecords = await prune(repository, { ...RULES, ...rules }, { log: SILENT, recordVerifier })
      const status = new Map(withRecords.digests.map((d) => [d.digest, d]))
      expect(status.get(releases[2]!.digest)!.reason).toMatch(/tag live is kept/)
      expect(status.get(releases[1]!.digest)!.reason).toMatch(/rollback window of live \(last 168 h, promotion records\)/)
      expect(status.get(releases[0]!.digest)!.status).toBe('planned')
      // Without the records, nothing says rel-b was in production two days ago.
      const without = await prune(repository, { ...RULES, ...rules, rollbackWindow: { count: 5 } }, { log: SILENT })
      expect(without.digests.find((d) => d.digest === releases[1]!.digest)!.status).toBe('planned')
    } finally {
      await h.close()
    }
  })

  it("lists every tag across the registry's pages, following its Link header", async () => {
    // Distribution 2.8 answers the whole list at once; the distribution spec lets a registry page it by `n` and `last`
    // and say where the next page is in a Link header (distribution-spec, "Listing Tags"). Pages of 4 here.
    const all = ((await (await fetch(`${registry.url}/v2/${REPO}/tags/list`)).json()) as { tags: string[] }).tags.sort()
    const paging = await startRegistryProxy(targetOf(registry.host), [
      {
        answer(req, res) {
          const url = new URL(req.url ?? '/', 'http://x')
          if (!url.pathname.endsWith('/tags/list')) return false
          const last = url.searchParams.get('last')
          const page = all.filter((t) => last === null || t > last).slice(0, 4)
          const more = page.length > 0 && page.at(-1)! < all.at(-1)!
          const link = more ? { link: `<${url.pathname}?n=4&last=${page.at(-1)}>; rel="next"` } : {}
          res.writeHead(200, { 'content-type': 'application/json', ...link }).end(JSON.stringify({ name: REPO, tags: page }))
          return true
        }
      }
    ])
    const h = createHarness()
    try {
      const listed = await h.stores.repository({ kind: 'registry', registry: paging.host, repository: REPO }).listTags()
      expect(listed.sort()).toEqual(all)
      expect(paging.seen.filter((s) => s.endsWith('/tags/list')).length).toBe(Math.ceil(all.length / 4))
    } finally {
      await h.close()
      await paging.stop()
    }
  })

  it('a registry that refuses deletion (405 UNSUPPORTED) is reported with what would have been deleted', async () => {
    const refusing = await startRegistryProxy(targetOf(registry.host), [
      { answer: (req, res) => req.method === 'DELETE' && ociError(res, 405, 'UNSUPPORTED', 'The operation is unsupported.') }
    ])
    const h = createHarness()
    try {
      const repository = h.stores.repository({ kind: 'registry', registry: refusing.host, repository: REPO })
      const refused = await prune(repository, RULES, { log: SILENT }).catch((e: unknown) => e)
      expect((refused as PromoteError).code).toBe('DELETION_REFUSED')
      expect((refused as Error).message).toMatch(
        /does not allow deleting manifests \(HTTP 405 \(UNSUPPORTED: The operation is unsupported\.\)\)\. 4 images would have been deleted: /
      )
      expect((refused as Error).message).toContain(`${builds[0]!.digest} (build-1)`)
    } finally {
      await h.close()
      await refusing.stop()
    }
    expect(await tagDigest(registry.url, REPO, 'build-1')).toBe(builds[0]!.digest)
  })
})
