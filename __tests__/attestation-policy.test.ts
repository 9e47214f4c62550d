// attestation-policy: CEL expressions over what verified attestations say. A real SLSA v1 provenance from GitHub's
// attest action; a vulnerability scan (cosign's vuln/v1 predicate wrapping a Trivy report) gated on "no CRITICAL, at
// most N HIGH" on the real registry; and every way a policy or a hostile predicate can go wrong.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { buildImage } from '../scripts/lib/images.ts'
import { runAction } from '../scripts/lib/runner.ts'
import { PromoteError } from '../src/errors.ts'
import { getInputs } from '../src/inputs.ts'
import { checkAttestationPolicy, compileAttestationPolicy } from '../src/verify/cel.ts'
import { evidenceFromBundles } from '../src/verify/evidence.ts'
import { createImageVerifier } from '../src/verify/index.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier, type VerifiedSignature } from '../src/verify/verifier.ts'
import { createHarness } from './support/harness.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { describeWithSharedFixtures, sharedFixture } from './support/shared-fixtures.ts'
import { dsseBundle, keylessTrust, publicGoodRoot, pushBundleReferrer, type Signer, type TestCA, type TestRekor } from './support/sigstore.ts'

const inputs = (values: Record<string, string>) => getInputs({ get: (name) => values[name] ?? '', secret: () => {} })
const SLSA = 'https://slsa.dev/provenance/v1'
const VULN = 'https://cosign.sigstore.dev/attestation/vuln/v1'

describeWithSharedFixtures("a real SLSA v1 provenance from GitHub's attest action", () => {
  const subject = 'sha256:49a3aa6075e0f49f82843e74b5baa614ad2a588e6675612bf108a0a008c5ac25'
  const bundle: unknown = JSON.parse(readFileSync(sharedFixture('sigstore/gh-cli/reusable-workflow-attestation.sigstore.json'), 'utf8'))
  const rootPath = publicGoodRoot()
  async function verified(): Promise<VerifiedSignature> {
    const [evidence] = evidenceFromBundles('github-attestation', subject, 'fixture', [bundle])
    const policy = inputs({
      image: 'ghcr.io/a/b',
      to: 'x',
      'signer-repository': 'github/artifact-attestations-workflows',
      'attestation-type': SLSA
    }).signaturePolicy!
    return new SignatureVerifier(policy, new TrustRoot({ trustedRootPath: rootPath })).verify(evidence!, undefined)
  }

  it('holds when the workflow repository in its external parameters is the one asked for', async () => {
    const rules = compileAttestationPolicy([
      'predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/malancas/attest-demo"',
      'predicate.buildDefinition.buildType.startsWith("https://slsa-framework.github.io/github-actions-buildtypes/workflow/")',
      `subject.exists(s, s.digest.sha256 == "${subject.slice(7)}")`
    ])
    expect(checkAttestationPolicy(rules, [await verified()], SLSA, 'fixture')).toHaveLength(1)
  })

  it('fails with the expression and the value it saw, so the user can act on it', async () => {
    const rules = compileAttestationPolicy(['predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"'])
    const attestation = await verified()
    expect(() => checkAttestationPolicy(rules, [attestation], SLSA, 'fixture')).toThrow(
      '"predicate.buildDefinition.externalParameters.workflow.repository == \\"https://github.com/acme/app\\"" is false (it saw predicate.buildDefinition.externalParameters.workflow.repository = "https://github.com/malancas/attest-demo")'
    )
  })
})

describe('a vulnerability scan gate on the real registry', () => {
  let registry: RunningRegistry
  let ca: TestCA
  let rekor: TestRekor
  let signer: Signer
  let root: string
  const IDENTITY = 'https://github.com/acme/app/.github/workflows/scan.yml@refs/heads/main'
  beforeAll(async () => {
    registry = await startRegistry()
    ;({ ca, rekor, root } = await keylessTrust())
    signer = await ca.issue(IDENTITY)
  })
  afterAll(async () => {
    await registry?.stop()
  })

  /** cosign attest --type vuln: a Trivy report as the predicate's scanner.result. */
  function vulnStatement(digest: string, severities: string[]): Buffer {
    return Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v0.1',
        predicateType: VULN,
        subject: [{ name: 'image', digest: { sha256: digest.slice(7) } }],
        predicate: {
          invocation: { parameters: null, uri: '', event_id: '', 'builder.id': '' },
          scanner: {
            uri: 'pkg:github/aquasecurity/trivy@0.58.1',
            version: '0.58.1',
            db: { uri: '', version: '' },
            result: {
              SchemaVersion: 2,
              ArtifactName: 'ghcr.io/acme/app',
              ArtifactType: 'container_image',
              Results: [
                {
                  Target: 'ghcr.io/acme/app (debian 12.8)',
                  Class: 'os-pkgs',
                  Type: 'debian',
                  Vulnerabilities: severities.map((Severity, i) => ({
                    VulnerabilityID: `CVE-2026-${1000 + i}`,
                    PkgName: 'libexample',
                    InstalledVersion: '1.0.0',
                    Severity
                  }))
                },
                { Target: 'app/package-lock.json', Class: 'lang-pkgs', Type: 'npm' }
              ]
            }
          },
          metadata: { scanStartedOn: '2026-11-30T00:00:00Z', scanFinishedOn: '2026-11-30T00:01:00Z' }
        }
      })
    )
  }
  const NO_CRITICAL = 'predicate.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.all(v, v.Severity != "CRITICAL"))'
  const AT_MOST_2_HIGH = 'predicate.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.filter(v, v.Severity == "HIGH").size() <= 2)'

  let seq = 0
  async function scanned(severities: string[]): Promise<string> {
    const repo = `cel/app${++seq}`
    const image = buildImage()
    await pushImage(registry.url, repo, 'build', image)
    await pushBundleReferrer(registry.url, repo, image, dsseBundle(signer, vulnStatement(image.digest, severities), rekor), VULN)
    return repo
  }
  async function promote(repo: string, policy: string[]) {
    const read = inputs({ image: 'ghcr.io/a/b', to: 'x', 'certificate-identity': IDENTITY, 'attestation-type': VULN, 'attestation-policy': policy.join('\n') })
    const verifier = await createImageVerifier(read.signaturePolicy!, { trustedRootPath: root })
    const h = createHarness({ verifier: verifier.signatures, rules: verifier.rules })
    try {
      return await h.run({ source: `${registry.host}/${repo}:build`, to: ['prod'] })
    } finally {
      await h.close()
    }
  }

  it('promotes a scan with no CRITICAL and at most 2 HIGH', async () => {
    const repo = await scanned(['HIGH', 'HIGH', 'MEDIUM', 'LOW'])
    const result = await promote(repo, [NO_CRITICAL, AT_MOST_2_HIGH])
    expect(result.verified.map((v) => v.predicateType)).toContain(VULN)
    expect(await tagDigest(registry.url, repo, 'prod')).toBe(result.digest)
  })

  it.each([
    [['HIGH', 'CRITICAL'], 'is false (it saw predicate.scanner.result.Results = '],
    [['HIGH', 'HIGH', 'HIGH'], `"${AT_MOST_2_HIGH.replace(/"/g, '\\"')}" is false`]
  ])('refuses %j before any write, naming the expression that failed', async (severities, message) => {
    const repo = await scanned(severities)
    const failed = await promote(repo, [NO_CRITICAL, AT_MOST_2_HIGH]).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(PromoteError)
    expect((failed as Error).message).toContain('no verified https://cosign.sigstore.dev/attestation/vuln/v1 attestation satisfies the attestation-policy')
    expect((failed as Error).message).toContain(message)
    expect(await tagDigest(registry.url, repo, 'prod')).toBeUndefined()
  })
})

describe('policies that cannot work, and hostile predicates', () => {
  const attestation = (predicate: unknown, extra: object = {}): VerifiedSignature => ({
    format: 'sigstore-bundle',
    subject: 'sha256:' + 'a'.repeat(64),
    source: 'test',
    predicateType: SLSA,
    statement: { subject: [], predicate },
    ...extra
  })
  const message = (expressions: string[], predicate: unknown, extra: object = {}): string => {
    try {
      checkAttestationPolicy(compileAttestationPolicy(expressions), [attestation(predicate, extra)], SLSA, 'here')
      return ''
    } catch (error) {
      return (error as Error).message
    }
  }

  it('an expression that does not compile is an input error naming it, before any request', async () => {
    await expect(
      createImageVerifier(
        inputs({ image: 'a.io/b', to: 'x', 'public-key': '', 'certificate-identity': 'x', 'attestation-type': SLSA, 'attestation-policy': 'predicate.a ==' })
          .signaturePolicy!,
        {}
      )
    ).rejects.toThrow('input "attestation-policy": "predicate.a ==" does not compile')
    expect(() => compileAttestationPolicy([`${'('.repeat(20000)}true${')'.repeat(20000)}`])).toThrow(/does not compile/)
    expect(() => inputs({ image: 'a.io/b', to: 'x', 'certificate-identity': 'x', 'attestation-policy': 'true' })).toThrow(
      'input "attestation-policy": needs attestation-type'
    )
    // Through the action: the registry named does not exist, so any request would fail differently.
    const run = await runAction({
      image: 'registry.invalid/acme/app:build',
      to: 'prod',
      'certificate-identity': 'x',
      'attestation-type': SLSA,
      'attestation-policy': 'predicate.buildDefinition.buildType ==\npredicate.ok'
    })
    expect(run.exitCode).not.toBe(0)
    expect(run.stdout).toContain('INPUT_INVALID: input "attestation-policy": "predicate.buildDefinition.buildType ==" does not compile')
  })

  it('a missing field, a result that is not a boolean, a statement too large to keep', () => {
    expect(message(['predicate.nothing.here == 1'], { a: 1 })).toContain(
      '"predicate.nothing.here == 1" could not be evaluated: field not found: nothing (it saw predicate.nothing.here is absent)'
    )
    expect(message(['predicate.a'], { a: 1 })).toContain('"predicate.a" returned number, not a boolean')
    expect(message(['true'], undefined, { statement: undefined })).toContain('its statement is over 256 KiB, too large to evaluate the attestation-policy on')
  })

  it('deeply nested and huge predicates cost what the expression walks, and fail cleanly', () => {
    let deep: unknown = 'bottom'
    for (let i = 0; i < 100_000; i++) deep = { x: deep }
    // Equality walks the whole structure: a stack that runs out is a failed rule, not a crash.
    expect(message(['predicate == predicate.x'], deep)).toMatch(/could not be evaluated|is false/)
    expect(message(['has(predicate.x.x.x)'], deep)).toBe('')
    const huge = { items: Array.from({ length: 20_000 }, (_, i) => ({ id: i, name: `item-${i}\u001b[31m` })) }
    expect(message(['predicate.items.all(i, i.id >= 0)'], huge)).toBe('')
    // What it saw is cut short and escaped: no control character reaches a log line.
    const shown = message(['predicate.items.size() == 0'], huge)
    expect(shown).toContain('…')
    expect(shown).not.toContain('\u001b')
  })
})
