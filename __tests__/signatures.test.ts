// Signature and attestation policy end to end on the real registry, with
// offline trust material: every storage format verifies and is carried to
// another registry (which has no referrers API), and every negative case fails
// closed with nothing written.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createPublicKey } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildImage, buildMultiArch, sha256, type Image } from '../scripts/lib/images.ts'
import { exactIdentity, identityRegexp, signaturePredicateTypes, type SignaturePolicy } from '../src/verify/policy.ts'
import { githubAttestations } from '../src/verify/github.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { createHarness, type HarnessOptions, type HarnessRequest } from './support/harness.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import {
  GITHUB_ISSUER,
  TestCA,
  TestRekor,
  attestationLayer,
  dsseBundle,
  inTotoStatement,
  keyPairSigner,
  pushBundleReferrer,
  pushLegacyTag,
  signatureLayer,
  simpleSigningPayload,
  trustedRootJson,
  type Signer
} from './support/sigstore.ts'

const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main'
const SLSA = 'https://slsa.dev/provenance/v1'
const COSIGN_SIGN = 'https://sigstore.dev/cosign/sign/v1'

let primary: RunningRegistry
let secondary: RunningRegistry
let ca: TestCA
let rekor: TestRekor
let trustedRoot: string
let keyless: Signer
let key: Signer
let seq = 0

beforeAll(async () => {
  ;[primary, secondary] = await Promise.all([startRegistry(), startRegistry()])
  ca = await TestCA.create()
  rekor = await TestRekor.create()
  trustedRoot = join(await mkdtemp(join(tmpdir(), 'oci-promote-trust-')), 'trusted_root.json')
  await writeFile(trustedRoot, JSON.stringify(trustedRootJson({ ca, rekor })))
  keyless = await ca.issue(IDENTITY)
  key = await keyPairSigner()
})
afterAll(async () => {
  await Promise.all([primary?.stop(), secondary?.stop()])
})

function verifier(policy: Partial<SignaturePolicy>): SignatureVerifier {
  return new SignatureVerifier(
    { publicKeys: [], issuer: GITHUB_ISSUER, signedPlatforms: 'index', predicateTypes: signaturePredicateTypes(policy.attestationType), ...policy },
    new TrustRoot({ trustedRootPath: trustedRoot })
  )
}
const byIdentity = (): Partial<SignaturePolicy> => ({ identity: exactIdentity(IDENTITY) })
const byKey = (signer: Signer = key): Partial<SignaturePolicy> => ({ publicKeys: [createPublicKey(signer.publicKeyPem)] })

/** A fresh image in a fresh repository of the primary registry. */
async function seed(image: Image = buildImage()): Promise<{ repo: string; image: Image }> {
  const repo = `signed/app${++seq}`
  await pushImage(primary.url, repo, 'build', image)
  return { repo, image }
}

async function promote(repo: string, policy: Partial<SignaturePolicy>, extra: Partial<HarnessRequest> = {}, options: HarnessOptions = {}) {
  const h = createHarness({ verifier: verifier(policy), ...options })
  try {
    const result = await h.run({ source: `${primary.host}/${repo}:build`, to: [`${secondary.host}/${repo}:prod`], ...extra })
    return { result, writes: h.writes() }
  } catch (error) {
    return { error: error as Error & { code: string }, writes: h.writes() }
  } finally {
    await h.close()
  }
}

/** A manifest written as given, however malformed, as anyone with push access could. */
async function putRaw(registryUrl: string, repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes })
  if (res.status !== 201) throw new Error(`seeding ${reference}: ${res.status} ${await res.text()}`)
}

/** Verifies at the destination with a fresh run, as a deploy job's required check would. */
async function verifyAt(repo: string, policy: Partial<SignaturePolicy>): Promise<void> {
  const h = createHarness({ verifier: verifier(policy) })
  try {
    const check = await h.run({ source: `${secondary.host}/${repo}:prod`, to: ['prod'], mode: 'verify' })
    expect(check.verified.length).toBeGreaterThan(0)
  } finally {
    await h.close()
  }
}

describe('every storage format verifies and is carried to another registry', () => {
  it('a keyless cosign .sig with a Rekor bundle', async () => {
    const { repo, image } = await seed()
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(keyless, simpleSigningPayload(repo, image.digest), rekor)])
    const { result, error } = await promote(repo, byIdentity())
    expect(error).toBeUndefined()
    expect(result!.verified).toEqual([
      expect.objectContaining({ format: 'cosign-signature', identity: IDENTITY, issuer: GITHUB_ISSUER, logIndex: expect.any(String) })
    ])
    expect(result!.attachmentsCopied).toBe(1)
    expect(await tagDigest(secondary.url, repo, `${image.digest.replace(':', '-')}.sig`)).toBeDefined()
    await verifyAt(repo, byIdentity())
  })

  it('a key-signed .sig without a transparency log entry, and one with an entry', async () => {
    const { repo, image } = await seed()
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(key, simpleSigningPayload(repo, image.digest))])
    const { result } = await promote(repo, byKey())
    expect(result!.verified[0]).toMatchObject({ format: 'cosign-signature', keyId: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) })
    await verifyAt(repo, byKey())

    const logged = await seed()
    await pushLegacyTag(primary.url, logged.repo, logged.image.digest, 'sig', [
      signatureLayer(key, simpleSigningPayload(logged.repo, logged.image.digest), rekor)
    ])
    const withLog = await promote(logged.repo, byKey())
    expect(withLog.result!.verified[0]!.logIndex).toBeDefined()
  })

  it('a cosign v3 Sigstore bundle referrer, carried through the fallback index, never tagging the image itself', async () => {
    const { repo, image } = await seed(buildMultiArch(2))
    await pushBundleReferrer(primary.url, repo, image, dsseBundle(keyless, inTotoStatement(image.digest, COSIGN_SIGN), rekor), COSIGN_SIGN)
    const { result, error } = await promote(repo, byIdentity())
    expect(error).toBeUndefined()
    expect(result!.verified).toEqual([expect.objectContaining({ format: 'sigstore-bundle', predicateType: COSIGN_SIGN, identity: IDENTITY })])
    const fallback = await tagDigest(secondary.url, repo, image.digest.replace(':', '-'))
    expect(fallback).toBeDefined()
    expect(fallback).not.toBe(image.digest)
    await verifyAt(repo, byIdentity())
  })

  it('a cosign .att attestation, required by predicate type', async () => {
    const { repo, image } = await seed()
    await pushLegacyTag(primary.url, repo, image.digest, 'att', [attestationLayer(keyless, inTotoStatement(image.digest, SLSA), SLSA, rekor)])
    const { result, error } = await promote(repo, { ...byIdentity(), attestationType: SLSA })
    expect(error).toBeUndefined()
    expect(result!.verified[0]).toMatchObject({ format: 'cosign-attestation', predicateType: SLSA })
    await verifyAt(repo, { ...byIdentity(), attestationType: SLSA })

    const other = await promote(repo, { ...byIdentity(), attestationType: 'https://spdx.dev/Document' })
    expect(other.error?.code).toBe('SIGNATURE_NOT_VERIFIED')
    expect(other.error?.message).toContain(`no verified attestation of type https://spdx.dev/Document (verified types: ${SLSA})`)
  })

  it('a GitHub artifact attestation from the GitHub API, signed by a reusable workflow', async () => {
    const { repo, image } = await seed()
    const reusable = await ca.issue('https://github.com/acme/shared/.github/workflows/attest.yml@refs/heads/main')
    const bundle = dsseBundle(reusable, inTotoStatement(image.digest, SLSA), rekor)
    const requests: string[] = []
    const api: Server = createServer((req, res) => {
      const url = decodeURIComponent(req.url ?? '')
      requests.push(`${req.method} ${url} ${req.headers.authorization ?? ''}`)
      if (url.startsWith(`/repos/acme/app/attestations/${image.digest}?`))
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ attestations: [{ bundle, repository_id: 1 }] }))
      else res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}')
    })
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r))
    const address = api.address() as { port: number }
    try {
      const externalEvidence = githubAttestations({ token: 'ghs_test', repository: 'acme/app', apiUrl: `http://127.0.0.1:${address.port}` })
      const policy = { identity: identityRegexp('https://github\\.com/acme/shared/\\.github/workflows/attest\\.yml@refs/heads/main'), attestationType: SLSA }
      const { result, error } = await promote(repo, policy, {}, { externalEvidence })
      expect(error).toBeUndefined()
      expect(result!.verified[0]).toMatchObject({ format: 'github-attestation', predicateType: SLSA })
      expect(requests[0]).toBe(`GET /repos/acme/app/attestations/${image.digest}?per_page=100 token ghs_test`)
    } finally {
      await new Promise((r) => api.close(r))
    }
  })

  it('signed-platforms all needs every platform signed', async () => {
    const { repo, image } = await seed(buildMultiArch(2))
    const signAll = async (digests: string[]) => {
      for (const digest of digests) await pushLegacyTag(primary.url, repo, digest, 'sig', [signatureLayer(keyless, simpleSigningPayload(repo, digest), rekor)])
    }
    await signAll([image.digest])
    const partial = await promote(repo, { ...byIdentity(), signedPlatforms: 'all' })
    expect(partial.error?.code).toBe('SIGNATURE_NOT_VERIFIED')
    expect(partial.error?.message).toContain(`${image.children[0]!.digest}: no signature or attestation found`)
    expect(partial.writes).toEqual([])
    await signAll(image.children.map((c) => c.digest))
    const full = await promote(repo, { ...byIdentity(), signedPlatforms: 'all' })
    expect(full.error).toBeUndefined()
    expect(full.result!.verified.map((v) => v.subject).sort()).toEqual([image.digest, ...image.children.map((c) => c.digest)].sort())
    await verifyAt(repo, { ...byIdentity(), signedPlatforms: 'all' })
  })
})

describe('every negative case fails closed, with a clear message and no write', () => {
  async function expectRefused(repo: string, policy: Partial<SignaturePolicy>, message: RegExp | string): Promise<void> {
    const { error, writes } = await promote(repo, policy)
    expect(error?.code).toBe('SIGNATURE_NOT_VERIFIED')
    expect(error?.message).toMatch(message)
    expect(error?.message).toContain('nothing was promoted')
    expect(writes).toEqual([])
    expect(await tagDigest(secondary.url, repo, 'prod')).toBeUndefined()
  }

  it('unsigned', async () => {
    const { repo, image } = await seed()
    await expectRefused(
      repo,
      byIdentity(),
      `${image.digest}: no signature or attestation found (looked at cosign tags ${image.digest.replace(':', '-')}.sig/.att`
    )
  })

  it('signed with another key', async () => {
    const { repo, image } = await seed()
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(await keyPairSigner(), simpleSigningPayload(repo, image.digest))])
    await expectRefused(repo, byKey(), /\.sig layer 1: SIGNATURE_ERROR: signature verification failed/)
  })

  it('a keyless signature when only a key is trusted, and a key signature when only an identity is', async () => {
    const a = await seed()
    await pushLegacyTag(primary.url, a.repo, a.image.digest, 'sig', [signatureLayer(keyless, simpleSigningPayload(a.repo, a.image.digest), rekor)])
    await expectRefused(a.repo, byKey(), 'it is a keyless signature, and the policy names no certificate-identity')
    const b = await seed()
    await pushLegacyTag(primary.url, b.repo, b.image.digest, 'sig', [signatureLayer(key, simpleSigningPayload(b.repo, b.image.digest))])
    await expectRefused(b.repo, byIdentity(), 'it is signed with a key, and the policy names no public-key')
  })

  it('another identity, including a look-alike repository that an unanchored regexp would accept', async () => {
    const { repo, image } = await seed()
    const evil = await ca.issue('https://github.com/acme/app-evil/.github/workflows/release.yml@refs/heads/main')
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(evil, simpleSigningPayload(repo, image.digest), rekor)])
    await expectRefused(
      repo,
      { identity: identityRegexp('https://github.com/acme/app') },
      /UNTRUSTED_SIGNER_ERROR: certificate identity error .*, got https:\/\/github.com\/acme\/app-evil\//
    )
    await expectRefused(repo, byIdentity(), /UNTRUSTED_SIGNER_ERROR: certificate identity error .*, got https:\/\/github.com\/acme\/app-evil\//)
  })

  it('another issuer', async () => {
    const { repo, image } = await seed()
    const other = await ca.issue(IDENTITY, { issuer: 'https://accounts.google.com' })
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(other, simpleSigningPayload(repo, image.digest), rekor)])
    await expectRefused(
      repo,
      byIdentity(),
      'UNTRUSTED_SIGNER_ERROR: invalid certificate extension - expected issuer=https://token.actions.githubusercontent.com, got issuer=https://accounts.google.com'
    )
  })

  it('a tampered payload', async () => {
    const { repo, image } = await seed()
    const honest = signatureLayer(key, simpleSigningPayload(repo, image.digest))
    const forged = Buffer.from(honest.bytes.toString().replace('"optional":null', '"optional":{"approved":"yes"}'))
    const { sha256 } = await import('../scripts/lib/images.ts')
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [
      { bytes: forged, descriptor: { ...honest.descriptor, digest: sha256(forged), size: forged.length } }
    ])
    await expectRefused(repo, byKey(), /\.sig layer 1: SIGNATURE_ERROR: signature verification failed/)
  })

  it('a valid signature of another digest, replayed onto this one', async () => {
    const { repo, image } = await seed()
    const other = buildImage()
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(keyless, simpleSigningPayload(repo, other.digest), rekor)])
    await pushBundleReferrer(primary.url, repo, image, dsseBundle(keyless, inTotoStatement(other.digest, COSIGN_SIGN), rekor), COSIGN_SIGN)
    await expectRefused(
      repo,
      byIdentity(),
      new RegExp(`it signs ${other.digest}, not ${image.digest}[\\s\\S]*its statement is about sha256:${other.digest.slice(7)}`)
    )
  })

  it('a certificate that had expired when the log saw the signature', async () => {
    const { repo, image } = await seed()
    const notBefore = new Date(Date.now() - 2 * 3600_000)
    const expired = await ca.issue(IDENTITY, { notBefore, minutes: 10 })
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(expired, simpleSigningPayload(repo, image.digest), rekor)])
    await expectRefused(repo, byIdentity(), /\.sig layer 1: CERTIFICATE_ERROR/)
    // The same certificate verifies when the log saw the signature inside its ten minutes: expiry is judged at log time.
    const inTime = await seed()
    const loggedAt = Math.floor(notBefore.getTime() / 1000) + 120
    await pushLegacyTag(primary.url, inTime.repo, inTime.image.digest, 'sig', [
      signatureLayer(expired, simpleSigningPayload(inTime.repo, inTime.image.digest), rekor, loggedAt)
    ])
    expect((await promote(inTime.repo, byIdentity())).error).toBeUndefined()
  })

  it('a certificate from a CA the trusted root does not hold', async () => {
    const { repo, image } = await seed()
    const rogue = await (await TestCA.create('rogue fulcio')).issue(IDENTITY)
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(rogue, simpleSigningPayload(repo, image.digest), rekor)])
    await expectRefused(repo, byIdentity(), /\.sig layer 1: CERTIFICATE_ERROR/)
  })

  it('a SET from a log the trusted root does not hold', async () => {
    const { repo, image } = await seed()
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(keyless, simpleSigningPayload(repo, image.digest), await TestRekor.create())])
    await expectRefused(repo, byIdentity(), /\.sig layer 1: TLOG_INCLUSION_PROMISE_ERROR/)
  })

  it('a certificate whose SAN has a byte outside printable ASCII that a lossy decoding reads as the trusted identity', async () => {
    const { repo, image } = await seed()
    // 0xE1 read as ASCII with the high bit dropped is "a": the certificate would pass as acme's.
    const lookalike = await ca.issue(IDENTITY.replace('/acme/', '/\u00e1cme/'))
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(lookalike, simpleSigningPayload(repo, image.digest), rekor)])
    await expectRefused(repo, byIdentity(), 'its certificate\'s subject alternative name is not plain printable ASCII: "https://github.com/\\xe1cme/app/')
  })

  it('a certificate whose OIDC issuer has a byte outside printable ASCII', async () => {
    const { repo, image } = await seed()
    const lookalike = await ca.issue(IDENTITY, { issuer: GITHUB_ISSUER.replace('actions', '\u00e1ctions'), issuerEncoding: 'latin1' })
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(lookalike, simpleSigningPayload(repo, image.digest), rekor)])
    await expectRefused(repo, byIdentity(), 'its certificate\'s OIDC issuer is not plain printable ASCII: "https://token.\\xe1ctions.')
  })

  it('a transparency log entry that names another key than the one that signed', async () => {
    const { repo, image } = await seed()
    const other = await ca.issue(IDENTITY)
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(keyless, simpleSigningPayload(repo, image.digest), rekor, undefined, other)])
    await expectRefused(repo, byIdentity(), /its transparency log entry \d+ names another key than the one that signed/)
    const keyed = await seed()
    await pushLegacyTag(primary.url, keyed.repo, keyed.image.digest, 'sig', [
      signatureLayer(key, simpleSigningPayload(keyed.repo, keyed.image.digest), rekor, undefined, await keyPairSigner())
    ])
    await expectRefused(keyed.repo, byKey(), /its transparency log entry \d+ names another key than the one that signed/)
  })

  it('an attestation that is not a signature of the image: a promotion record or an SBOM signed by the trusted identity', async () => {
    const { repo, image } = await seed()
    for (const type of ['https://oci-promote.dev/promotion/v1', 'https://spdx.dev/Document']) {
      await pushBundleReferrer(primary.url, repo, image, dsseBundle(keyless, inTotoStatement(image.digest, type), rekor), type)
    }
    await expectRefused(
      repo,
      byIdentity(),
      /2 found, none verifies:[\s\S]*attestation of type https:\/\/oci-promote.dev\/promotion\/v1, which this policy does not take as a signature of the image[\s\S]*attestation of type https:\/\/spdx.dev\/Document/
    )
    // The type a policy requires is the one exception: it is asked for by name.
    const { result, error } = await promote(repo, { ...byIdentity(), attestationType: 'https://spdx.dev/Document' })
    expect(error).toBeUndefined()
    expect(result!.verified.map((v) => v.predicateType)).toEqual(['https://spdx.dev/Document'])
  })

  it('malformed attachments beside a valid signature are skipped with a note, never fatal, and never carried', async () => {
    const { repo, image } = await seed()
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [signatureLayer(keyless, simpleSigningPayload(repo, image.digest), rekor)])
    // Anyone with push access can add these: an SBOM tag whose layer has size -1, and a fallback index entry with size -1.
    const sbom = Buffer.from('{"spdxVersion":"SPDX-2.3"}')
    await pushLegacyTag(primary.url, repo, image.digest, 'sbom', [
      { bytes: sbom, descriptor: { mediaType: 'text/spdx+json', digest: sha256(sbom), size: -1, annotations: {} } }
    ])
    const referrer = await pushBundleReferrer(primary.url, repo, image, dsseBundle(keyless, inTotoStatement(image.digest, SLSA), rekor), SLSA)
    const fallback = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: referrer, size: -1 }]
    }
    await putRaw(primary.url, repo, image.digest.replace(':', '-'), fallback.mediaType, Buffer.from(JSON.stringify(fallback)))

    const { result, error } = await promote(repo, byIdentity())
    expect(error).toBeUndefined()
    expect(result!.verified).toEqual([expect.objectContaining({ format: 'cosign-signature', identity: IDENTITY })])
    expect(result!.notes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`${image.digest.replace(':', '-')}\\.sbom: .*layers\\[0\\] is not a valid descriptor.*; skipped`)),
        expect.stringMatching(/manifests\[0\] is not a valid descriptor .*; skipped/)
      ])
    )
    expect(result!.attachmentsCopied).toBe(1)
    expect(await tagDigest(secondary.url, repo, `${image.digest.replace(':', '-')}.sbom`)).toBeUndefined()
    expect(await tagDigest(secondary.url, repo, image.digest.replace(':', '-'))).toBeUndefined()
    await verifyAt(repo, byIdentity())
  })

  it('malformed annotations and a malformed bundle are counted as unverified, not as a crash', async () => {
    const { repo, image } = await seed()
    const layer = signatureLayer(keyless, simpleSigningPayload(repo, image.digest), rekor)
    await pushLegacyTag(primary.url, repo, image.digest, 'sig', [
      { ...layer, descriptor: { ...layer.descriptor, annotations: { ...layer.descriptor.annotations, 'dev.sigstore.cosign/bundle': '{not json' } } }
    ])
    await pushBundleReferrer(primary.url, repo, image, { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', junk: true }, COSIGN_SIGN)
    await expectRefused(repo, byIdentity(), /2 found, none verifies:[\s\S]*cannot be read[\s\S]*cannot be read/)
  })
})
