// The OCI 1.1 referrers API, which Distribution 2.8 lacks, on an in-memory registry:
// reading bundles from it, writing to it without a fallback tag, and a registry
// that answers the fallback tag with the image itself.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildMultiArch } from '../scripts/lib/images.ts'
import { exactIdentity, signaturePredicateTypes } from '../src/verify/policy.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { createHarness } from './support/harness.ts'
import { startMemoryRegistry, type MemoryRegistry } from './support/memory-registry.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { GITHUB_ISSUER, TestCA, TestRekor, dsseBundle, inTotoStatement, pushBundleReferrer, trustedRootJson, type Signer } from './support/sigstore.ts'

const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main'
const COSIGN_SIGN = 'https://sigstore.dev/cosign/sign/v1'
let distribution: RunningRegistry
let withApi: MemoryRegistry
let rekor: TestRekor
let signer: Signer
let verifier: SignatureVerifier

beforeAll(async () => {
  ;[distribution, withApi] = await Promise.all([startRegistry(), startMemoryRegistry()])
  const ca = await TestCA.create()
  rekor = await TestRekor.create()
  signer = await ca.issue(IDENTITY)
  const root = join(await mkdtemp(join(tmpdir(), 'oci-promote-ref-')), 'trusted_root.json')
  await writeFile(root, JSON.stringify(trustedRootJson({ ca, rekor })))
  verifier = new SignatureVerifier(
    { publicKeys: [], identity: exactIdentity(IDENTITY), issuer: GITHUB_ISSUER, signedPlatforms: 'index', predicateTypes: signaturePredicateTypes() },
    new TrustRoot({ trustedRootPath: root })
  )
})
afterAll(async () => {
  await Promise.all([distribution?.stop(), withApi?.stop()])
})

it('carries a referrer to a registry with the referrers API without writing a fallback tag, and it verifies there', async () => {
  const image = buildMultiArch(2)
  await pushImage(distribution.url, 'ref/app', 'build', image)
  const referrer = await pushBundleReferrer(
    distribution.url,
    'ref/app',
    image,
    dsseBundle(signer, inTotoStatement(image.digest, COSIGN_SIGN), rekor),
    COSIGN_SIGN
  )
  const h = createHarness({ verifier })
  try {
    const result = await h.run({ source: `${distribution.host}/ref/app:build`, to: [`${withApi.host}/ref/app:prod`] })
    expect(result.attachmentsCopied).toBe(1)
    expect(withApi.manifest('ref/app', referrer)).toBeDefined()
    expect(withApi.tags('ref/app')).toEqual(['prod'])
    expect(withApi.requests).toContain(`GET /v2/ref/app/referrers/${image.digest}`)

    // Read back from the API side, as a deploy job's check would.
    const check = await h.run({ source: `${withApi.host}/ref/app:prod`, to: ['prod'], mode: 'verify' })
    expect(check.verified).toEqual([expect.objectContaining({ format: 'sigstore-bundle', source: `${withApi.host}/ref/app@${referrer} (referrer)` })])
  } finally {
    await h.close()
  }
})

it('ignores a fallback tag that resolves to the image itself, and never writes one', async () => {
  const hostile = await startMemoryRegistry({ referrersApi: false, fallbackTagIsSubject: true })
  const image = buildMultiArch(2)
  const h = createHarness({ verifier })
  try {
    await pushImage(hostile.url, 'odd/app', 'build', image)
    const error = (await h.run({ source: `${hostile.host}/odd/app:build`, to: [`${distribution.host}/odd/app:prod`] }).catch((e: unknown) => e)) as Error & {
      code: string
    }
    expect(error.code).toBe('SIGNATURE_NOT_VERIFIED')
    expect(error.message).toContain(`odd/app:${image.digest.replace(':', '-')} resolves to the image itself, not a referrers index; ignored`)
    expect(h.writes()).toEqual([])

    // Unsigned promotion from it still copies nothing as "referrers": the children are not mistaken for them.
    const plain = createHarness()
    try {
      const result = await plain.run({ source: `${hostile.host}/odd/app:build`, to: [`${distribution.host}/odd/app:prod`] })
      expect(result.attachmentsCopied).toBe(0)
      expect(result.notes.some((n) => n.includes('resolves to the image itself'))).toBe(true)
      expect(await tagDigest(distribution.url, 'odd/app', image.digest.replace(':', '-'))).toBeUndefined()
    } finally {
      await plain.close()
    }
  } finally {
    await h.close()
    await hostile.stop()
  }
})
