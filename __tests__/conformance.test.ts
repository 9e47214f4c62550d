// The Sigstore client conformance suite's bundle-verification corpus (../shared/fixtures/sigstore-conformance),
// every case through `oci-promote verify-bundle` (dist/cli.js) in the suite's own protocol: cases named *_fail
// must exit 1, every other 0.
import { expect, it } from '@jest/globals'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runProcess } from '../scripts/lib/runner.ts'
import { verifyArtifactBundle } from '../src/verify/index.ts'
import { exactIdentity, type SignaturePolicy } from '../src/verify/policy.ts'
import { describeWithSharedFixtures, sharedFixture } from './support/shared-fixtures.ts'
import { publicGoodRoot } from './support/sigstore.ts'

const CORPUS = sharedFixture('sigstore-conformance/bundle-verify')
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const DEFAULT_IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main'
const DEFAULT_ISSUER = 'https://token.actions.githubusercontent.com'

/** Cases the library alone got wrong, or right for a reason that reached the user as a crash: refused here, saying why. */
const REASONS: Record<string, RegExp> = {
  'trust-root-tlog-missing-validity-start_fail': /tlogs\[1\] has no validFor\.start/,
  'bundle-with-root-cert_fail': /its certificate chain includes a root certificate/,
  'bundle-empty-certificate-chain_fail': /cannot be read: invalid v0\.1 bundle \(verificationMaterial\.content\.x509CertificateChain\.certificates\)$/
}

const cases = existsSync(CORPUS)
  ? readdirSync(CORPUS, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()
  : []

/**
 * Runs one case through `oci-promote verify-bundle` (dist/cli.js) as the suite drives a client; resolves with the
 * reason it was refused (its stderr), or undefined when it exited 0.
 */
async function run(name: string, publicGood: string): Promise<string | undefined> {
  const dir = join(CORPUS, name)
  const optional = (file: string): string | undefined => (existsSync(join(dir, file)) ? join(dir, file) : undefined)
  const text = (file: string): string | undefined => {
    const path = optional(file)
    return path ? readFileSync(path, 'utf8').trim() : undefined
  }
  const key = optional('key.pub')
  const args = [
    CLI,
    'verify-bundle',
    '--bundle',
    join(dir, 'bundle.sigstore.json'),
    ...(key ? ['--key', key] : ['--certificate-identity', text('identity') ?? DEFAULT_IDENTITY, '--certificate-oidc-issuer', text('issuer') ?? DEFAULT_ISSUER]),
    '--trusted-root',
    optional('trusted_root.json') ?? publicGood,
    optional('artifact') ?? join(CORPUS, 'a.txt')
  ]
  const { exitCode, stderr } = await runProcess(process.execPath, args)
  if (exitCode === 0) return undefined
  expect(exitCode).toBe(1)
  return stderr.trim()
}

describeWithSharedFixtures('Sigstore conformance: bundle-verify corpus', () => {
  const publicGood = publicGoodRoot()

  it('holds the 70 cases this project was measured against', () => {
    expect(cases).toHaveLength(70)
  })

  it.each(cases)('%s', async (name) => {
    const refusal = await run(name, publicGood)
    if (name.endsWith('_fail')) expect(refusal).toMatch(REASONS[name] ?? /./)
    else expect(refusal).toBeUndefined()
  })
})

describeWithSharedFixtures('what verification reports', () => {
  it("a log index only as the inclusion proof covers it, when no SET signs the entry's own", async () => {
    // Rekor v2: an inclusion proof and a timestamp authority's time, no signed entry timestamp.
    const dir = join(CORPUS, 'rekor2-happy-path')
    const bundle = JSON.parse(readFileSync(join(dir, 'bundle.sigstore.json'), 'utf8')) as {
      verificationMaterial: { tlogEntries: { logIndex: string; inclusionPromise?: unknown; inclusionProof: { logIndex: string } }[] }
    }
    const entry = bundle.verificationMaterial.tlogEntries[0]!
    expect(entry.inclusionPromise).toBeUndefined()
    entry.logIndex = '999999999'
    const policy: SignaturePolicy = {
      publicKeys: [],
      identity: exactIdentity(DEFAULT_IDENTITY),
      issuer: DEFAULT_ISSUER,
      predicateTypes: 'any',
      signedPlatforms: 'index'
    }
    const verified = await verifyArtifactBundle({
      bundle,
      artifact: readFileSync(join(CORPUS, 'a.txt')),
      policy,
      trust: { trustedRootPath: join(dir, 'trusted_root.json') }
    })
    expect(verified.logIndex).toBe(entry.inclusionProof.logIndex)
  })
})
