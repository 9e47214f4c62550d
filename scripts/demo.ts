// The main job on an embedded default: a small two-platform image written to an OCI image layout and signed
// there as `cosign sign --key` would, then promoted build-1 → dev → staging → prod and on to a second layout
// (another "registry"), through dist/index.js exactly as the runner runs it. Every promotion verifies the
// signature first and carries it along; each step signs a promotion record, and the next opens only on the record
// of the one before (require-environment). It ends with the gate doing its job: an unsigned image and one signed
// by someone else's key are refused, and production is left as it was.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cosignSignatureImage, signatureTag } from './lib/cosign.ts'
import { buildMultiArch, writeLayout } from './lib/images.ts'
import { runAction } from './lib/runner.ts'

const root = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'oci-promote-demo-')))
const registry = join(root, 'registry')
const mirror = join(root, 'mirror')
const pem = (key: { export(o: object): string | Buffer }, type: 'pkcs8' | 'spki'): string => key.export({ type, format: 'pem' }).toString()

// The build: the image and its signature by the release key (the build job's cosign key).
const release = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const image = buildMultiArch(2, { layerSizes: [256 * 1024, 64 * 1024] })
await writeLayout(registry, image, 'build-1')
await writeLayout(registry, cosignSignatureImage(release.privateKey, 'demo/app', image.digest), signatureTag(image.digest))
console.log(`Built ${image.digest} (linux/amd64 + linux/arm64/v8) into oci:${registry}:build-1, signed with the release key\n`)

// The promotions: a second key signs their records.
const promoter = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const verify = { 'public-key': pem(release.publicKey, 'spki') }
const record = (environment: string) => ({ environment, 'attest-promotion': 'true', 'signing-key': pem(promoter.privateKey, 'pkcs8') })
const gate = (environment: string) => ({ 'require-environment': environment, 'promotion-public-key': pem(promoter.publicKey, 'spki') })

// The attacks: a build that was never signed, and one signed with a key the policy does not trust.
const unsigned = buildMultiArch(2, { layerSizes: [1024] })
await writeLayout(registry, unsigned, 'build-2')
const forged = buildMultiArch(2, { layerSizes: [1024] })
await writeLayout(registry, forged, 'build-3')
await writeLayout(
  registry,
  cosignSignatureImage(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'demo/app', forged.digest),
  signatureTag(forged.digest)
)

const prod = `prod\noci:${mirror}:prod`
const steps: { inputs: Record<string, string>; note?: string; refused?: boolean }[] = [
  { inputs: { image: `oci:${registry}:build-1`, digest: image.digest, to: 'dev', ...verify, ...record('dev') } },
  { inputs: { image: `oci:${registry}:dev`, digest: image.digest, to: 'staging', ...verify, ...gate('dev'), ...record('staging') } },
  {
    inputs: { image: `oci:${registry}:staging`, digest: image.digest, to: prod, ...verify, ...gate('staging'), ...record('production'), 'history-tags': 'true' }
  },
  { inputs: { image: `oci:${registry}:staging`, digest: image.digest, to: prod, ...verify, ...gate('staging') }, note: 're-run: nothing to do' },
  { inputs: { image: `oci:${registry}:build-2`, to: prod, ...verify }, note: 'an unsigned build: refused', refused: true },
  { inputs: { image: `oci:${registry}:build-3`, to: prod, ...verify }, note: "a build signed with someone else's key: refused", refused: true },
  { inputs: { image: `oci:${registry}:prod`, to: prod, mode: 'verify', ...verify }, note: 'production still holds the signed release' }
]

for (const step of steps) {
  console.log(`━━ ${step.inputs['image']} → ${step.inputs['to']!.replace('\n', ', ')}${step.note ? ` (${step.note})` : ''}`)
  const run = await runAction(step.inputs)
  const lines = run.stdout.split('\n').filter((l) => !l.startsWith('::') || l.startsWith('::error::'))
  process.stdout.write(lines.map((l) => `  ${l.replace(/^::error::/, 'refused: ').replace(/%0A/g, '\n    ')}`).join('\n'))
  if ((run.exitCode !== 0) !== Boolean(step.refused)) {
    console.error(`\nunexpected: exit code ${run.exitCode}\n`, run.stdout, run.stderr)
    process.exit(1)
  }
  if (step.refused) {
    console.log('\n')
    continue
  }
  console.log('outputs:')
  for (const [name, value] of Object.entries(run.outputs)) console.log(`  ${name} = ${value}`)
  console.log('job summary:')
  console.log(
    run.summary
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n')
  )
}
console.log(`Done. Inspect the layouts under ${root}`)
