// The main job on an embedded default: a small two-platform image written to an
// OCI image layout, promoted build-1 → dev → staging → prod and on to a second
// layout (another "registry"), through dist/index.js exactly as the runner runs it.
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

const steps = [
  { image: `oci:${registry}:build-1`, digest: image.digest, to: 'dev' },
  { image: `oci:${registry}:dev`, digest: image.digest, to: 'staging' },
  { image: `oci:${registry}:staging`, digest: image.digest, to: `prod\noci:${mirror}:prod` },
  { image: `oci:${registry}:staging`, digest: image.digest, to: `prod\noci:${mirror}:prod`, note: 're-run: nothing to do' }
]

for (const step of steps) {
  console.log(`━━ ${step.image} → ${step.to.replace('\n', ', ')}${step.note ? ` (${step.note})` : ''}`)
  const run = await runAction({ image: step.image, digest: step.digest, to: step.to, 'verify-signature': 'false' })
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
