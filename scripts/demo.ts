// The main job on an embedded default: a small two-platform image written to an
// OCI image layout, promoted build-1 → dev → staging → prod and on to a second
// layout (another "registry"), through dist/index.js exactly as the runner runs it.
// Each step signs a promotion record with a demo key, and the next step opens
// only on the record of the one before (require-environment).
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildMultiArch, writeLayout } from './lib/images.ts'
import { runAction } from './lib/runner.ts'

const root = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'oci-promote-demo-')))
const registry = join(root, 'registry')
const mirror = join(root, 'mirror')

const image = buildMultiArch(2, { layerSizes: [256 * 1024, 64 * 1024] })
await writeLayout(registry, image, 'build-1')
console.log(`Built ${image.digest} (linux/amd64 + linux/arm64/v8) into oci:${registry}:build-1\n`)

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const signingKey = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const promotionKey = publicKey.export({ type: 'spki', format: 'pem' }).toString()
const record = (environment: string) => ({ environment, 'attest-promotion': 'true', 'signing-key': signingKey })
const gate = (environment: string) => ({ 'require-environment': environment, 'promotion-public-key': promotionKey })

const steps: { inputs: Record<string, string>; note?: string }[] = [
  { inputs: { image: `oci:${registry}:build-1`, digest: image.digest, to: 'dev', ...record('dev') } },
  { inputs: { image: `oci:${registry}:dev`, digest: image.digest, to: 'staging', ...gate('dev'), ...record('staging') } },
  { inputs: { image: `oci:${registry}:staging`, digest: image.digest, to: `prod\noci:${mirror}:prod`, ...gate('staging'), ...record('production'), 'history-tags': 'true' } },
  { inputs: { image: `oci:${registry}:staging`, digest: image.digest, to: `prod\noci:${mirror}:prod`, ...gate('staging') }, note: 're-run: nothing to do' }
]

for (const step of steps) {
  console.log(`━━ ${step.inputs['image']} → ${step.inputs['to']!.replace('\n', ', ')}${step.note ? ` (${step.note})` : ''}`)
  const run = await runAction({ ...step.inputs, 'verify-signature': 'false' })
  process.stdout.write(run.stdout.split('\n').filter((l) => !l.startsWith('::')).map((l) => `  ${l}`).join('\n'))
  if (run.exitCode !== 0) {
    console.error(run.stdout, run.stderr)
    process.exit(run.exitCode)
  }
  console.log('outputs:')
  for (const [name, value] of Object.entries(run.outputs)) console.log(`  ${name} = ${value}`)
  console.log('job summary:')
  console.log(run.summary.split('\n').map((l) => `  ${l}`).join('\n'))
}
console.log(`Done. Inspect the layouts under ${root}`)
