// Real, public signatures (../shared/fixtures/sigstore), verified offline by the
// same code the action runs, against the public-good trusted root.
import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Descriptor } from '../src/oci/manifest.ts'
import { legacySignatureBundle } from '../src/verify/cosign.ts'
import { evidenceFromBundles, type Evidence } from '../src/verify/evidence.ts'
import { exactIdentity, identityRegexp, signaturePredicateTypes, type SignaturePolicy } from '../src/verify/policy.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { describeWithSharedFixtures, sharedFixture } from './support/shared-fixtures.ts'
import { publicGoodRoot } from './support/sigstore.ts'

const fixture = (name: string): string => sharedFixture(`sigstore/${name}`)
const readJson = (name: string): unknown => JSON.parse(readFileSync(fixture(name), 'utf8'))

const PUBLIC_GOOD = publicGoodRoot()

function verifier(policy: Partial<SignaturePolicy>, trustedRootPath = PUBLIC_GOOD): SignatureVerifier {
  return new SignatureVerifier(
    {
      publicKeys: [],
      issuer: 'https://token.actions.githubusercontent.com',
      signedPlatforms: 'index',
      predicateTypes: signaturePredicateTypes(policy.attestationType),
      ...policy
    },
    new TrustRoot({ trustedRootPath })
  )
}

describeWithSharedFixtures('a real keyless cosign .sig layer (salrashid123/server_image)', () => {
  const layer = readJson('cosign-legacy-keyless/sig-layer.json') as Descriptor
  const payload = readFileSync(fixture('cosign-legacy-keyless/payload.json'))
  const subject = 'sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321'
  const identity = 'https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30'
  const evidence = (digest = subject): Evidence => ({
    format: 'cosign-signature',
    subject: digest,
    source: 'fixture',
    bundle: legacySignatureBundle(layer),
    payload
  })

  it('verifies with its identity and issuer, and reports its log index', async () => {
    const result = await verifier({ identity: exactIdentity(identity) }).verify(evidence(), undefined)
    expect(result).toMatchObject({ identity, issuer: 'https://token.actions.githubusercontent.com', logIndex: '1004096555' })
  })

  it('fails for a neighbouring identity, even with a regexp that would match it unanchored', async () => {
    await expect(verifier({ identity: exactIdentity(identity.replace('v0.0.30', 'v0.0.3')) }).verify(evidence(), undefined)).rejects.toThrow(
      /UNTRUSTED_SIGNER_ERROR|identity/
    )
    await expect(verifier({ identity: identityRegexp('https://github.com/salrashid123/go-bazel') }).verify(evidence(), undefined)).rejects.toThrow(/identity/)
  })

  it('fails when replayed for another digest', async () => {
    await expect(verifier({ identity: exactIdentity(identity) }).verify(evidence(`sha256:${'1'.repeat(64)}`), undefined)).rejects.toThrow(
      `it signs ${subject}, not sha256:${'1'.repeat(64)}`
    )
  })

  it('fails with a payload that is not the signed one', async () => {
    const tampered: Evidence = { ...evidence(), payload: Buffer.from(payload.toString().replace('"optional":null', '"optional":{}')) }
    await expect(verifier({ identity: exactIdentity(identity) }).verify(tampered, undefined)).rejects.toThrow(/SIGNATURE_ERROR|signature/i)
  })
})

describeWithSharedFixtures('a real cosign v3 referrer bundle', () => {
  const bundle = readJson('cosign/cosign-oci-attestation.sigstore.json')
  const subject = 'sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4'
  const policy = { identity: exactIdentity('cody@soyland.com'), issuer: 'https://github.com/login/oauth' }
  it('verifies with the cosign test trusted root when its predicate type is asked for, and reports it', async () => {
    const [evidence] = evidenceFromBundles('sigstore-bundle', subject, 'fixture', [bundle])
    const result = await verifier(
      { ...policy, attestationType: 'https://cosign.sigstore.dev/attestation/v1' },
      fixture('cosign/cosign-trusted_root_pgi.json')
    ).verify(evidence!, undefined)
    expect(result).toMatchObject({ identity: 'cody@soyland.com', predicateType: 'https://cosign.sigstore.dev/attestation/v1' })
  })

  it('is not a signature of the image when the policy does not take its predicate type as one (cosign attest, not cosign sign)', async () => {
    const [evidence] = evidenceFromBundles('sigstore-bundle', subject, 'fixture', [bundle])
    await expect(verifier(policy, fixture('cosign/cosign-trusted_root_pgi.json')).verify(evidence!, undefined)).rejects.toThrow(
      'it is an attestation of type https://cosign.sigstore.dev/attestation/v1, which this policy does not take as a signature of the image'
    )
  })
})

describeWithSharedFixtures('real GitHub artifact attestations', () => {
  it('verifies one signed by a reusable workflow, under the reusable workflow identity', async () => {
    const subject = 'sha256:49a3aa6075e0f49f82843e74b5baa614ad2a588e6675612bf108a0a008c5ac25'
    const [evidence] = evidenceFromBundles('github-attestation', subject, 'fixture', [readJson('gh-cli/reusable-workflow-attestation.sigstore.json')])
    const signer = verifier({
      identity: identityRegexp('https://github\\.com/github/artifact-attestations-workflows/\\.github/workflows/attest\\.yml@[0-9a-f]{40}'),
      attestationType: 'https://slsa.dev/provenance/v1'
    })
    expect(await signer.verify(evidence!, undefined)).toMatchObject({
      predicateType: 'https://slsa.dev/provenance/v1',
      identity: 'https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@09b495c3f12c7881b3cc17209a327792065c1a1d'
    })
    // The caller's repository is not the signer: an identity for it does not match.
    await expect(verifier({ identity: identityRegexp('https://github\\.com/malancas/attest-demo/.*') }).verify(evidence!, undefined)).rejects.toThrow(
      /identity/
    )
  })

  it('verifies a custom issuer only when that issuer is asked for', async () => {
    const subject = 'sha256:afa27b44d43b02a9fea41d13cedc2e4016cfcf87c5dbf990e593669aa8ce286d'
    const [evidence] = evidenceFromBundles('github-attestation', subject, 'fixture', [readJson('gh-cli/custom-issuer.sigstore.json')])
    const identity = exactIdentity('https://github.com/too-legit/attest/.github/workflows/integration.yml@refs/heads/main')
    expect(await verifier({ identity, issuer: 'https://token.actions.githubusercontent.com/hammer-time' }).verify(evidence!, undefined)).toMatchObject({
      issuer: 'https://token.actions.githubusercontent.com/hammer-time'
    })
    await expect(verifier({ identity }).verify(evidence!, undefined)).rejects.toThrow(/issuer/)
  })

  it('refuses a bundle whose signature is invalid', async () => {
    const [evidence] = evidenceFromBundles('github-attestation', `sha256:${'0'.repeat(64)}`, 'fixture', [
      readJson('gh-cli/sigstoreBundle-invalid-signature.json')
    ])
    await expect(verifier({ identity: identityRegexp('.*') }, fixture('gh-cli/trusted_root.json')).verify(evidence!, undefined)).rejects.toThrow(
      /TLOG_BODY_ERROR/
    )
  })
})

describe('the default public-good root', () => {
  it('explains how to run without TUF when the TUF mirror cannot be reached', async () => {
    const trust = new TrustRoot({ tufMirrorURL: 'http://127.0.0.1:9', tufCachePath: mkdtempSync(join(tmpdir(), 'oci-promote-tuf-')) })
    await expect(trust.load()).rejects.toMatchObject({
      code: 'NETWORK',
      message: expect.stringContaining('pass a trusted_root.json with the trusted-root input')
    })
  })
})
