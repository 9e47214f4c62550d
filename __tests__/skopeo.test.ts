// Interop with an independent implementation: skopeo reads what oci-promote wrote,
// and oci-promote reads the OCI layout skopeo wrote, with the same digests.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { buildMultiArch } from '../scripts/lib/images.ts'
import { createHarness } from './support/harness.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'

const run = promisify(execFile)
let primary: RunningRegistry
let secondary: RunningRegistry

beforeAll(async () => {
  await run('skopeo', ['--version']).catch(() => {
    throw new Error('skopeo is not installed; the interop check needs it. Run `bash scripts/test.sh` (installs it) or `apt-get install skopeo`.')
  })
  ;[primary, secondary] = await Promise.all([startRegistry(), startRegistry()])
})
afterAll(async () => {
  await Promise.all([primary?.stop(), secondary?.stop()])
})

it('a cross-registry promotion is byte-identical for skopeo, and a skopeo-written layout promotes to the same digest', async () => {
  const index = buildMultiArch(3, { flavor: 'docker' })
  await pushImage(primary.url, 'interop/app', 'build', index)
  const h = createHarness()
  try {
    const result = await h.run({ source: `${primary.host}/interop/app:build`, to: [`${secondary.host}/interop/app:prod`] })
    expect(result.digest).toBe(index.digest)

    const { stdout: raw } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${secondary.host}/interop/app:prod`], {
      encoding: 'buffer'
    })
    expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(index.digest)
    for (const child of index.children) {
      const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${secondary.host}/interop/app@${child.digest}`], {
        encoding: 'buffer'
      })
      expect(`sha256:${createHash('sha256').update(stdout).digest('hex')}`).toBe(child.digest)
    }

    // skopeo writes OCI layouts in OCI media types only, so the layout leg uses an OCI index.
    const ociIndex = buildMultiArch(2, { flavor: 'oci' })
    await pushImage(primary.url, 'interop/oci', 'build', ociIndex)
    await h.run({ source: `${primary.host}/interop/oci:build`, to: [`${secondary.host}/interop/oci:prod`] })
    const layout = join(await mkdtemp(join(tmpdir(), 'oci-promote-skopeo-')), 'layout')
    await run('skopeo', [
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      `docker://${secondary.host}/interop/oci:prod`,
      `oci:${layout}:fromskopeo`
    ])
    const back = await h.run({ source: `oci:${layout}:fromskopeo`, to: [`${primary.host}/interop/roundtrip:prod`] })
    expect(back.digest).toBe(ociIndex.digest)
    expect(await tagDigest(primary.url, 'interop/roundtrip', 'prod')).toBe(ociIndex.digest)
  } finally {
    await h.close()
  }
})
