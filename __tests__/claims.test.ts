// GitHub certificate claims (Fulcio's 1.3.6.1.4.1.57264.1.* extensions): who signed, from which repository and ref,
// on which runner. First on a real GitHub attestation signed by a reusable workflow (whose SAN is the reusable
// workflow, the same for every caller), then on the real registry with certificates of the test CA that carry them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { buildImage } from '../scripts/lib/images.ts'
import { PromoteError } from '../src/errors.ts'
import { getInputs } from '../src/inputs.ts'
import { renderSummary } from '../src/summary.ts'
import { outputsOf } from '../src/run.ts'
import { evidenceFromBundles } from '../src/verify/evidence.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { createHarness } from './support/harness.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { describeWithSharedFixtures, sharedFixture } from './support/shared-fixtures.ts'
import { dsseBundle, inTotoStatement, keylessTrust, publicGoodRoot, pushBundleReferrer, type TestCA, type TestRekor } from './support/sigstore.ts'

/** The inputs of a run, as the action reads them. */
const inputs = (values: Record<string, string>) => getInputs({ get: (name) => values[name] ?? '', secret: () => {} })

describeWithSharedFixtures('claims on a real attestation signed by a reusable workflow', () => {
  const subject = 'sha256:49a3aa6075e0f49f82843e74b5baa614ad2a588e6675612bf108a0a008c5ac25'
  const bundle: unknown = JSON.parse(readFileSync(sharedFixture('sigstore/gh-cli/reusable-workflow-attestation.sigstore.json'), 'utf8'))
  const [evidence] = evidenceFromBundles('github-attestation', subject, 'fixture', [bundle])
  const rootPath = publicGoodRoot()
  const verify = (values: Record<string, string>) =>
    new SignatureVerifier(
      inputs({ image: 'ghcr.io/a/b', to: 'x', 'attestation-type': 'https://slsa.dev/provenance/v1', ...values }).signaturePolicy!,
      new TrustRoot({ trustedRootPath: rootPath })
    ).verify(evidence!, undefined)

  it('the caller repository and the reusable signer workflow, as gh attestation verify --repo --signer-workflow checks them', async () => {
    const verified = await verify({
      'source-repository': 'malancas/attest-demo',
      'source-owner': 'malancas',
      'signer-workflow': 'github/artifact-attestations-workflows/.github/workflows/attest.yml',
      'signer-repository': 'github/artifact-attestations-workflows',
      'deny-self-hosted-runners': 'true'
    })
    expect(verified.claims).toMatchObject({
      'source-repository': 'https://github.com/malancas/attest-demo',
      'source-owner': 'https://github.com/malancas',
      'signer-workflow': 'https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@09b495c3f12c7881b3cc17209a327792065c1a1d',
      'deny-self-hosted-runners': 'github-hosted'
    })
  })

  it('refuses the same signature for another repository of the organisation that calls the same workflow', async () => {
    await expect(
      verify({ 'source-repository': 'malancas/other-app', 'signer-workflow': 'github/artifact-attestations-workflows/.github/workflows/attest.yml' })
    ).rejects.toThrow(
      'Source Repository URI is "https://github.com/malancas/attest-demo", and source-repository asks for https://github.com/malancas/other-app'
    )
  })
})

describe('claims on the real registry', () => {
  let registry: RunningRegistry
  let ca: TestCA
  let rekor: TestRekor
  let root: string
  const SIGNER = 'https://github.com/acme/build/.github/workflows/build.yml@refs/heads/main'
  const EXTENSIONS = {
    '1.3.6.1.4.1.57264.1.9': SIGNER,
    '1.3.6.1.4.1.57264.1.10': 'b'.repeat(40),
    '1.3.6.1.4.1.57264.1.11': 'self-hosted',
    '1.3.6.1.4.1.57264.1.12': 'https://github.com/acme/app',
    '1.3.6.1.4.1.57264.1.14': 'refs/heads/main',
    '1.3.6.1.4.1.57264.1.16': 'https://github.com/acme'
  }
  beforeAll(async () => {
    registry = await startRegistry()
    ;({ ca, rekor, root } = await keylessTrust())
  })
  afterAll(async () => {
    await registry?.stop()
  })

  let seq = 0
  async function signedImage(extensions: Record<string, string> = EXTENSIONS): Promise<string> {
    const repo = `claims/app${++seq}`
    const image = buildImage()
    await pushImage(registry.url, repo, 'build', image)
    const signer = await ca.issue(SIGNER, { extensions })
    const type = 'https://sigstore.dev/cosign/sign/v1'
    await pushBundleReferrer(registry.url, repo, image, dsseBundle(signer, inTotoStatement(image.digest, type), rekor), type)
    return repo
  }
  async function promote(repo: string, values: Record<string, string>) {
    const policy = inputs({ image: 'ghcr.io/a/b', to: 'x', ...values }).signaturePolicy!
    const h = createHarness({ verifier: new SignatureVerifier(policy, new TrustRoot({ trustedRootPath: root })) })
    try {
      return await h.run({ source: `${registry.host}/${repo}:build`, to: ['prod'] })
    } finally {
      await h.close()
    }
  }

  it('promotes when every claim holds, and the verified output and the summary say what was checked', async () => {
    const repo = await signedImage()
    const result = await promote(repo, {
      'signer-workflow': 'acme/build/.github/workflows/build.yml',
      'signer-digest': 'b'.repeat(40),
      'source-repository': 'acme/app',
      'source-owner': 'acme',
      'source-ref': 'refs/heads/main'
    })
    expect(result.verified[0]!.claims).toEqual({
      'signer-workflow': SIGNER,
      'signer-digest': 'b'.repeat(40),
      'source-owner': 'https://github.com/acme',
      'source-repository': 'https://github.com/acme/app',
      'source-ref': 'refs/heads/main'
    })
    const outcome = { results: [result], signaturesChecked: true, usage: [] }
    expect(outputsOf(outcome).verified[0]).toMatchObject({ claims: { 'source-repository': 'https://github.com/acme/app' } })
    const summary = renderSummary(outcome)
    expect(summary).toContain('**Certificate claims checked:** <code>source-repository</code> = <code>https://github.com/acme/app</code>')
    expect(summary).toContain('<code>signer-workflow</code> = <code>https://github.com/acme/build/.github/workflows/build.yml@refs/heads/main</code>')
  })

  it.each([
    [
      { 'signer-workflow': SIGNER, 'deny-self-hosted-runners': 'true' },
      'Runner Environment is "self-hosted", and deny-self-hosted-runners asks for github-hosted'
    ],
    [
      { 'signer-workflow': SIGNER, 'source-repository': 'acme/other' },
      'Source Repository URI is "https://github.com/acme/app", and source-repository asks for https://github.com/acme/other'
    ],
    [
      { 'signer-repository': 'acme/app' },
      'Build Signer URI is "https://github.com/acme/build/.github/workflows/build.yml@refs/heads/main", and signer-repository asks for a workflow of https://github.com/acme/app'
    ],
    [
      { 'signer-workflow': SIGNER, 'source-ref-regexp': 'refs/tags/v.*' },
      'Source Repository Ref is "refs/heads/main", and source-ref asks for /refs/tags/v.*/'
    ],
    [
      { 'signer-workflow': SIGNER, 'source-digest': 'a'.repeat(40) },
      'has no Source Repository Digest extension (1.3.6.1.4.1.57264.1.13), which source-digest asks for'
    ],
    [
      { 'signer-workflow': SIGNER, 'signer-digest': 'c'.repeat(40) },
      `Build Signer Digest is "${'b'.repeat(40)}", and signer-digest asks for ${'c'.repeat(40)}`
    ],
    [
      { 'signer-workflow': SIGNER, 'source-owner': 'evil' },
      'Source Repository Owner URI is "https://github.com/acme", and source-owner asks for https://github.com/evil'
    ],
    [
      { 'signer-workflow-regexp': 'https://github\\.com/acme/build/\\.github/workflows/release\\.yml@.*' },
      'Build Signer URI is "https://github.com/acme/build/.github/workflows/build.yml@refs/heads/main", and signer-workflow asks for'
    ]
  ])('refuses before any write when a claim fails: %j', async (values, message) => {
    const repo = await signedImage()
    const failed = await promote(repo, values).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(PromoteError)
    expect((failed as Error).message).toContain(message)
    expect(await tagDigest(registry.url, repo, 'prod')).toBeUndefined()
  })

  it('source claims alone say where, not who: the policy refuses them without a signer, and the promotion- set reads the same', () => {
    expect(() => inputs({ image: 'ghcr.io/a/b', to: 'x', 'source-repository': 'acme/app' })).toThrow(
      'input "source-repository": says where a build came from, not who signed it: also set certificate-identity, certificate-identity-regexp, signer-workflow or signer-repository'
    )
    const read = inputs({
      image: 'ghcr.io/a/b',
      to: 'x',
      'verify-signature': 'false',
      'require-environment': 'staging',
      'promotion-signer-workflow': 'acme/platform/.github/workflows/promote.yml',
      'promotion-source-repository': 'acme/app',
      'promotion-deny-self-hosted-runners': 'true'
    })
    expect(read.promotion.recordPolicy!.claims!.map((c) => [c.name, c.match.description])).toEqual([
      ['promotion-source-repository', 'https://github.com/acme/app'],
      ['promotion-signer-workflow', 'https://github.com/acme/platform/.github/workflows/promote.yml@<any ref>'],
      ['promotion-deny-self-hosted-runners', 'github-hosted']
    ])
  })
})
