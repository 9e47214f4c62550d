// Signed promotion records and environment gates end to end on the real
// registry: dev → staging → production, each step gated on the record of the
// one before, and every way a gate must stay closed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createPublicKey } from 'node:crypto'
import { buildImage, type Image } from '../scripts/lib/images.ts'
import { PROMOTION_PREDICATE_TYPE, keyRecordSigner, type RecordSigner } from '../src/records.ts'
import { ImageVerifier } from '../src/verify/index.ts'
import { signaturePredicateTypes } from '../src/verify/policy.ts'
import { storeDependencies } from '../src/run.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { immutableTags } from './support/families.ts'
import { createHarness, type HarnessOptions, type HarnessRequest } from './support/harness.ts'
import { startRegistryProxy, targetOf } from './support/registry-proxy.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { dsseBundle, inTotoStatement, keyPairSigner, pushBundleReferrer, type Signer } from './support/sigstore.ts'

const RUN = {
  repository: 'acme/app',
  workflowRef: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
  commit: 'abc123',
  runId: '42',
  runAttempt: '1',
  actor: 'octocat'
}
let staging: RunningRegistry
let production: RunningRegistry
let releaser: Signer
let outsider: Signer
let signer: RecordSigner
let seq = 0

beforeAll(async () => {
  ;[staging, production] = await Promise.all([startRegistry(), startRegistry()])
  releaser = await keyPairSigner()
  outsider = await keyPairSigner()
  signer = await keyRecordSigner(releaser.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())
})
afterAll(async () => {
  await Promise.all([staging?.stop(), production?.stop()])
})

function gateFor(environment: string, key: Signer = releaser): NonNullable<NonNullable<HarnessOptions['deps']>['gate']> {
  const verifier = new SignatureVerifier(
    {
      publicKeys: [createPublicKey(key.publicKeyPem)],
      issuer: 'unused',
      attestationType: PROMOTION_PREDICATE_TYPE,
      predicateTypes: [PROMOTION_PREDICATE_TYPE],
      signedPlatforms: 'index'
    },
    new TrustRoot({})
  )
  return { environment, verifier: new ImageVerifier(verifier) }
}

async function promote(request: HarnessRequest, deps?: HarnessOptions['deps']) {
  const h = createHarness(deps ? { deps } : {})
  try {
    return { result: await h.run(request), writes: h.writes() }
  } catch (error) {
    return { error: error as Error & { code: string }, writes: h.writes() }
  } finally {
    await h.close()
  }
}

async function seed(): Promise<{ repo: string; image: Image }> {
  const repo = `rec/app${++seq}`
  const image = buildImage()
  await pushImage(staging.url, repo, 'build', image)
  return { repo, image }
}

describe('dev → staging → production with records and gates', () => {
  it('each step records itself, and the next one opens only on that record', async () => {
    const { repo, image } = await seed()
    const dev = await promote({ source: `${staging.host}/${repo}:build`, to: ['dev'] }, { record: { environment: 'dev', signer, run: RUN } })
    expect(dev.error).toBeUndefined()
    expect(dev.result!.records).toEqual([expect.stringMatching(new RegExp(`^${staging.host}/${repo}@sha256:`))])

    const toStaging = await promote(
      { source: `${staging.host}/${repo}:dev`, to: ['staging'] },
      { gate: gateFor('dev'), record: { environment: 'staging', signer, run: RUN } }
    )
    expect(toStaging.error).toBeUndefined()
    expect(toStaging.result!.gate!.predicate).toMatchObject({
      environment: 'dev',
      source: `${staging.host}/${repo}:build`,
      digest: image.digest,
      workflow: RUN,
      destinations: [{ reference: `${staging.host}/${repo}:dev`, previousDigest: null, status: 'created' }]
    })

    const toProd = await promote(
      { source: `${staging.host}/${repo}:staging`, to: [`${production.host}/${repo}:prod`] },
      { gate: gateFor('staging'), record: { environment: 'production', signer, run: RUN } }
    )
    expect(toProd.error).toBeUndefined()
    expect(toProd.result!.gate!.predicate).toMatchObject({ environment: 'staging' })
    expect(await tagDigest(production.url, repo, 'prod')).toBe(image.digest)

    // Production carries its own record and the earlier ones, so "what is in production and how it got there" is answerable there.
    const check = await promote({ source: `${production.host}/${repo}:prod`, to: ['prod'], mode: 'verify' }, { gate: gateFor('production') })
    expect(check.error).toBeUndefined()
    expect(check.result!.gate!.predicate).toMatchObject({
      environment: 'production',
      destinations: [{ reference: `${production.host}/${repo}:prod`, previousDigest: null, status: 'created' }]
    })
  })

  it('a re-run with nothing to promote writes no new record', async () => {
    const { repo } = await seed()
    await promote({ source: `${staging.host}/${repo}:build`, to: ['dev'] }, { record: { environment: 'dev', signer, run: RUN } })
    const again = await promote({ source: `${staging.host}/${repo}:build`, to: ['dev'] }, { record: { environment: 'dev', signer, run: RUN } })
    expect(again.result!.records).toEqual([])
    expect(again.writes).toEqual([])
  })
})

describe('a production promotion is refused, with nothing written', () => {
  async function expectClosed(repo: string, gate: ReturnType<typeof gateFor>, message: RegExp | string): Promise<void> {
    const { error, writes } = await promote({ source: `${staging.host}/${repo}:build`, to: [`${production.host}/${repo}:prod`] }, { gate })
    expect(error?.code).toBe('PROMOTION_GATE')
    expect(error?.message).toMatch(message)
    expect(writes).toEqual([])
    expect(await tagDigest(production.url, repo, 'prod')).toBeUndefined()
  }

  it('without any promotion record', async () => {
    const { repo } = await seed()
    await expectClosed(repo, gateFor('staging'), 'carries no promotion record, and require-environment asks for one from "staging"')
  })

  it('with a record for another environment only', async () => {
    const { repo } = await seed()
    await promote({ source: `${staging.host}/${repo}:build`, to: ['dev'] }, { record: { environment: 'dev', signer, run: RUN } })
    await expectClosed(repo, gateFor('staging'), 'has verified promotion records for dev, none for "staging"')
  })

  it('with a staging record signed by the wrong identity', async () => {
    const { repo } = await seed()
    const impostor = await keyRecordSigner(outsider.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())
    await promote({ source: `${staging.host}/${repo}:build`, to: ['staging'] }, { record: { environment: 'staging', signer: impostor, run: RUN } })
    await expectClosed(repo, gateFor('staging'), /no promotion record .* verifies under the promotion policy[\s\S]*SIGNATURE_ERROR/)
  })

  it('with a staging record of another digest, replayed onto this one', async () => {
    const other = await seed()
    await promote({ source: `${staging.host}/${other.repo}:build`, to: ['staging'] }, { record: { environment: 'staging', signer, run: RUN } })
    const { repo, image } = await seed()
    const statement = inTotoStatement(other.image.digest, PROMOTION_PREDICATE_TYPE)
    const replayed = JSON.parse(statement.toString()) as { predicate: object }
    replayed.predicate = { environment: 'staging', digest: other.image.digest }
    await pushBundleReferrer(staging.url, repo, image, dsseBundle(releaser, Buffer.from(JSON.stringify(replayed))), PROMOTION_PREDICATE_TYPE)
    await expectClosed(repo, gateFor('staging'), `its statement is about sha256:${other.image.digest.slice(7)}, not ${image.digest}`)
  })

  it('with a staging record signed by the trusted key that is not a well-formed record', async () => {
    const { repo, image } = await seed()
    const statement = JSON.parse(inTotoStatement(image.digest, PROMOTION_PREDICATE_TYPE).toString()) as { predicate: object }
    statement.predicate = {
      environment: 'staging',
      action: 'promote',
      digest: image.digest,
      promotedAt: new Date().toISOString(),
      destinations: [{ reference: 'x', previousDigest: '../../etc', status: 'moved' }]
    }
    await pushBundleReferrer(staging.url, repo, image, dsseBundle(releaser, Buffer.from(JSON.stringify(statement))), PROMOTION_PREDICATE_TYPE)
    await expectClosed(repo, gateFor('staging'), 'has 1 verified record(s) that are not well-formed promotion records, none for "staging"')
  })

  it('with a tampered staging record', async () => {
    const { repo, image } = await seed()
    const honest = JSON.parse(inTotoStatement(image.digest, PROMOTION_PREDICATE_TYPE).toString()) as { predicate: object }
    honest.predicate = { environment: 'dev' }
    const bundle = dsseBundle(releaser, Buffer.from(JSON.stringify(honest))) as { dsseEnvelope: { payload: string } }
    const forged = { ...honest, predicate: { environment: 'staging' } }
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(forged)).toString('base64')
    await pushBundleReferrer(staging.url, repo, image, bundle, PROMOTION_PREDICATE_TYPE)
    await expectClosed(repo, gateFor('staging'), /SIGNATURE_ERROR: signature verification failed/)
  })
})

describe('a promotion record says "moved by", never "built and signed by"', () => {
  it('an unsigned image stays refused after a run that recorded its promotion with the release key', async () => {
    const { repo } = await seed()
    const releasePolicy = new SignatureVerifier(
      { publicKeys: [createPublicKey(releaser.publicKeyPem)], issuer: 'unused', predicateTypes: signaturePredicateTypes(), signedPlatforms: 'index' },
      new TrustRoot({})
    )
    const refuse = async () => {
      const h = createHarness({ verifier: releasePolicy })
      try {
        await h.run({ source: `${staging.host}/${repo}:build`, to: [`${production.host}/${repo}:prod`] })
        throw new Error('promoted')
      } catch (error) {
        return { error: error as Error & { code: string }, writes: h.writes() }
      } finally {
        await h.close()
      }
    }
    expect((await refuse()).error.code).toBe('SIGNATURE_NOT_VERIFIED')
    // verify-signature: false, attest-promotion: true, signing-key: the release key.
    const recorded = await promote({ source: `${staging.host}/${repo}:build`, to: ['dev'] }, { record: { environment: 'dev', signer, run: RUN } })
    expect(recorded.result!.records).toHaveLength(1)
    const { error, writes } = await refuse()
    expect(error.code).toBe('SIGNATURE_NOT_VERIFIED')
    expect(error.message).toContain(`it is an attestation of type ${PROMOTION_PREDICATE_TYPE}, which this policy does not take as a signature of the image`)
    expect(writes).toEqual([])
    expect(await tagDigest(production.url, repo, 'prod')).toBeUndefined()
  })
})

describe('history tags', () => {
  it('keep where a tag pointed before each move, and are never moved', async () => {
    const { repo, image: first } = await seed()
    const second = buildImage()
    const third = buildImage()
    await pushImage(staging.url, repo, 'second', second)
    await pushImage(staging.url, repo, 'third', third)
    const { historyTag } = await import('../src/history-tags.ts')
    await promote({ source: `${staging.host}/${repo}:build`, to: ['prod'], historyTags: true }, undefined)
    const moved = await promote({ source: `${staging.host}/${repo}:second`, to: ['prod'], historyTags: true }, undefined)
    expect(moved.result!.destinations[0]).toMatchObject({ status: 'moved', previousDigest: first.digest })
    expect(await tagDigest(staging.url, repo, historyTag('prod', first.digest))).toBe(first.digest)
    await promote({ source: `${staging.host}/${repo}:third`, to: ['prod'], historyTags: true }, undefined)
    expect(await tagDigest(staging.url, repo, historyTag('prod', first.digest))).toBe(first.digest)
    expect(await tagDigest(staging.url, repo, historyTag('prod', second.digest))).toBe(second.digest)
    expect(await tagDigest(staging.url, repo, 'prod')).toBe(third.digest)
  })
})

describe('mode: rollback', () => {
  /** Rolls back a release: per image, its destination tags and, optionally, the digest they must hold now. */
  async function rollBackRelease(images: { tags: string[]; current?: string }[], environment: string, key: Signer = releaser, withRecord = true) {
    const { rollbackRelease } = await import('../src/rollback.ts')
    const { parseReference } = await import('../src/oci/reference.ts')
    const h = createHarness()
    try {
      const results = await rollbackRelease(
        images.map(({ tags, current }) => ({
          environment,
          destinations: tags.map((t) => parseReference(t)),
          verifyBlobs: false,
          concurrency: 4,
          ...(current ? { current } : {})
        })),
        {
          ...storeDependencies(h.stores, withRecord ? { record: { environment, signer, run: RUN, action: 'rollback' as const } } : {}),
          recordVerifier: gateFor(environment, key).verifier
        }
      )
      return { results, writes: h.writes() }
    } catch (error) {
      return { error: error as Error & { code: string }, writes: h.writes() }
    } finally {
      await h.close()
    }
  }
  async function rollBack(tags: string[], environment: string, key: Signer = releaser, withRecord = true) {
    const { results, ...rest } = await rollBackRelease([{ tags }], environment, key, withRecord)
    return { ...rest, results: results?.[0] }
  }

  it('moves production back to the digest its record says it held, verified again, and records the rollback', async () => {
    const { repo, image: first } = await seed()
    const second = buildImage()
    await pushImage(staging.url, repo, 'second', second)
    await promote(
      { source: `${staging.host}/${repo}:build`, to: [`${production.host}/${repo}:prod`] },
      { record: { environment: 'production', signer, run: RUN } }
    )
    await promote(
      { source: `${staging.host}/${repo}:second`, to: [`${production.host}/${repo}:prod`] },
      { record: { environment: 'production', signer, run: RUN } }
    )
    expect(await tagDigest(production.url, repo, 'prod')).toBe(second.digest)

    const { results, error } = await rollBack([`${production.host}/${repo}:prod`], 'production')
    expect(error).toBeUndefined()
    expect(results!.destinations[0]).toMatchObject({
      reference: `${production.host}/${repo}:prod`,
      digest: first.digest,
      previousDigest: second.digest,
      status: 'moved'
    })
    expect(await tagDigest(production.url, repo, 'prod')).toBe(first.digest)
    expect(results!.records).toHaveLength(1)

    // The rollback is itself a verified record of the production environment, on the restored digest.
    const check = await promote({ source: `${production.host}/${repo}:prod`, to: ['prod'], mode: 'verify' }, { gate: gateFor('production') })
    expect(check.error).toBeUndefined()
    const records = await (async () => {
      const { findAttachments } = await import('../src/oci/attachments.ts')
      const h = createHarness()
      try {
        const { parseReference } = await import('../src/oci/reference.ts')
        const repository = h.stores.repository(parseReference(`${production.host}/${repo}`))
        return (await findAttachments(repository, [first.digest], (await import('p-limit')).default(2))).attachments.length
      } finally {
        await h.close()
      }
    })()
    expect(records).toBeGreaterThanOrEqual(2)
  })

  it('walks back through history: after R → S → T, two rollbacks go T → S → R, never back to T', async () => {
    const { repo, image: r } = await seed()
    const [s, t] = [buildImage(), buildImage()]
    await pushImage(staging.url, repo, 's', s)
    await pushImage(staging.url, repo, 't', t)
    const prod = `${production.host}/${repo}:prod`
    for (const tag of ['build', 's', 't']) {
      const step = await promote({ source: `${staging.host}/${repo}:${tag}`, to: [prod] }, { record: { environment: 'production', signer, run: RUN } })
      expect(step.error).toBeUndefined()
    }
    const first = await rollBack([prod], 'production')
    expect(first.error).toBeUndefined()
    expect(first.results!.destinations[0]).toMatchObject({ digest: s.digest, previousDigest: t.digest })
    const second = await rollBack([prod], 'production')
    expect(second.error).toBeUndefined()
    expect(second.results!.destinations[0]).toMatchObject({ digest: r.digest, previousDigest: s.digest })
    expect(await tagDigest(production.url, repo, 'prod')).toBe(r.digest)
    // R was the first digest production held: a third rollback has nowhere to go, and says so.
    const third = await rollBack([prod], 'production')
    expect(third.error?.code).toBe('NOT_PROMOTED')
    expect(third.error?.message).toContain(`was created by the promotion of ${r.digest}`)
    expect(third.writes).toEqual([])
  })

  it('refuses when the current digest has no record from the trusted signer, or nothing came before it', async () => {
    const { repo } = await seed()
    await promote(
      { source: `${staging.host}/${repo}:build`, to: [`${production.host}/${repo}:prod`] },
      { record: { environment: 'production', signer, run: RUN } }
    )
    const first = await rollBack([`${production.host}/${repo}:prod`], 'production')
    expect(first.error?.code).toBe('NOT_PROMOTED')
    expect(first.error?.message).toContain('was created by the promotion of')
    const wrongKey = await rollBack([`${production.host}/${repo}:prod`], 'production', outsider)
    expect(wrongKey.error?.code).toBe('PROMOTION_GATE')
    expect(wrongKey.error?.message).toMatch(/cannot roll back .* verifies under the promotion policy/)
    expect([...first.writes, ...wrongKey.writes]).toEqual([])
  })

  /** Promotes each of `builds` (tags at staging) to production's `tag` in turn, recording each promotion. */
  async function promoteInTurn(repo: string, builds: string[], to: string, host = production.host) {
    for (const build of builds) {
      const step = await promote(
        { source: `${staging.host}/${repo}:${build}`, to: [`${host}/${repo}:${to}`] },
        { record: { environment: 'production', signer, run: RUN } }
      )
      expect(step.error).toBeUndefined()
    }
  }

  it('a release goes back as one unit: each image one step, its own result; one image with nowhere to go stops them all before any write', async () => {
    const images = await Promise.all([seed(), seed(), seed()])
    const second = images.map(() => buildImage())
    for (const [i, { repo }] of images.entries()) await pushImage(staging.url, repo, 'second', second[i]!)
    await promoteInTurn(images[0].repo, ['build', 'second'], 'prod')
    await promoteInTurn(images[1].repo, ['build', 'second'], 'prod')
    // The third image reached production once: nothing came before it there.
    await promoteInTurn(images[2].repo, ['second'], 'prod')
    const prod = (i: number) => `${production.host}/${images[i]!.repo}:prod`

    const refused = await rollBackRelease([{ tags: [prod(0)] }, { tags: [prod(1)] }, { tags: [prod(2)] }], 'production')
    expect(refused.error?.code).toBe('NOT_PROMOTED')
    expect(refused.error?.message).toContain(`${prod(2)} was created by the promotion of ${second[2]!.digest}`)
    expect(refused.writes).toEqual([])
    for (const [i, { repo }] of images.entries()) expect(await tagDigest(production.url, repo, 'prod')).toBe(second[i]!.digest)

    // Naming the digest production must hold now: a release rolls back what it promoted, not what came after it.
    const stale = await rollBackRelease([{ tags: [prod(0)], current: images[0].image.digest }], 'production')
    expect(stale.error?.code).toBe('NOT_PROMOTED')
    expect(stale.error?.message).toContain(`${prod(0)} holds ${second[0]!.digest}, not ${images[0].image.digest} that the rollback names`)
    expect(stale.writes).toEqual([])

    const back = await rollBackRelease([{ tags: [prod(0)], current: second[0]!.digest }, { tags: [prod(1)] }], 'production')
    expect(back.error).toBeUndefined()
    expect(back.results!.map((r) => r.destinations.map((d) => [d.reference, d.digest, d.previousDigest]))).toEqual([
      [[prod(0), images[0].image.digest, second[0]!.digest]],
      [[prod(1), images[1].image.digest, second[1]!.digest]]
    ])
    expect(back.results!.map((r) => r.records.length)).toEqual([1, 1])
    for (const i of [0, 1]) expect(await tagDigest(production.url, images[i]!.repo, 'prod')).toBe(images[i]!.image.digest)
  })

  it('a tag write refused mid-way puts back every tag the rollback moved, though they went back to different digests', async () => {
    const { repo, image: a } = await seed()
    const [b, c] = [buildImage(), buildImage()]
    await pushImage(staging.url, repo, 'b', b)
    await pushImage(staging.url, repo, 'c', c)
    // prod-us becomes immutable (as ECR answers) once its history is written, so the rollback's write to it fails.
    const refuse = { on: false }
    const ecr = immutableTags('ecr', ['prod-us'], repo)
    const proxy = await startRegistryProxy(targetOf(production.host), [{ answer: (req, res) => refuse.on && ecr.answer!(req, res) }])
    try {
      await promoteInTurn(repo, ['build'], 'prod-eu', proxy.host)
      await promoteInTurn(repo, ['b'], 'prod-us', proxy.host)
      const both = await promote(
        { source: `${staging.host}/${repo}:c`, to: [`${proxy.host}/${repo}:prod-eu`, `${proxy.host}/${repo}:prod-us`] },
        { record: { environment: 'production', signer, run: RUN } }
      )
      expect(both.error).toBeUndefined()
      refuse.on = true
      // prod-eu goes back to a, prod-us to b: two promotions, one unit. prod-eu's write lands, prod-us's is refused.
      const failed = await rollBack([`${proxy.host}/${repo}:prod-eu`, `${proxy.host}/${repo}:prod-us`], 'production')
      expect(failed.error?.message).toMatch(/TAG_INVALID/)
      expect(failed.error?.message).toContain(`Tags already moved were put back: ${proxy.host}/${repo}:prod-eu back at ${c.digest}`)
      expect(await tagDigest(production.url, repo, 'prod-eu')).toBe(c.digest)
      expect(await tagDigest(production.url, repo, 'prod-us')).toBe(c.digest)
      expect(a.digest).not.toBe(c.digest)
    } finally {
      await proxy.stop()
    }
  })
})
