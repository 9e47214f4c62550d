// `oci-promote` as a command (dist/cli.js), against the real registry: flags named like the inputs, outputs as JSON
// on stdout, the log on stderr, and the documented exit codes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { fileURLToPath } from 'node:url'
import { buildImage } from '../scripts/lib/images.ts'
import { runProcess } from '../scripts/lib/runner.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { keyPairSigner, pushLegacyTag, signatureLayer, simpleSigningPayload } from './support/sigstore.ts'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
let registry: RunningRegistry

beforeAll(async () => {
  registry = await startRegistry()
})
afterAll(async () => {
  await registry?.stop()
})

/** Runs the CLI with no GitHub or docker-config surroundings leaking in from the test's own environment. */
function cli(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GITHUB_') && !k.startsWith('INPUT_')))
  return runProcess(process.execPath, [CLI, ...args], { ...env, DOCKER_CONFIG: '/nonexistent-oci-promote-cli' })
}

describe('oci-promote promote|plan|verify', () => {
  it('promotes a key-signed image with flags named like the inputs, printing the outputs as JSON', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'cli/app', 'build', image)
    const key = await keyPairSigner()
    await pushLegacyTag(registry.url, 'cli/app', image.digest, 'sig', [signatureLayer(key, simpleSigningPayload('cli/app', image.digest))])

    const planned = await cli('plan', `${registry.host}/cli/app:build`, '--to', 'staging', '--to', 'prod', '--public-key', key.publicKeyPem)
    expect(planned.exitCode).toBe(0)
    expect(JSON.parse(planned.stdout).promoted.map((p: { status: string }) => p.status)).toEqual(['planned', 'planned'])
    expect(await tagDigest(registry.url, 'cli/app', 'staging')).toBeUndefined()

    const run = await cli(
      'promote',
      '--image',
      `${registry.host}/cli/app:build`,
      '--to=staging',
      '--to',
      'prod',
      '--public-key',
      key.publicKeyPem,
      '--digest',
      image.digest
    )
    expect(run.exitCode).toBe(0)
    const outputs = JSON.parse(run.stdout) as {
      digest: string
      image: string
      promoted: { reference: string; status: string }[]
      verified: { format: string }[]
    }
    expect(outputs).toMatchObject({ digest: image.digest, image: `${registry.host}/cli/app@${image.digest}` })
    expect(outputs.promoted).toEqual([
      expect.objectContaining({ reference: `${registry.host}/cli/app:staging`, status: 'created' }),
      expect.objectContaining({ reference: `${registry.host}/cli/app:prod`, status: 'created' })
    ])
    expect(outputs.verified).toEqual([expect.objectContaining({ format: 'cosign-signature' })])
    expect(run.stderr).toContain(`created   ${registry.host}/cli/app:prod @ ${image.digest}`)
    expect(await tagDigest(registry.url, 'cli/app', 'prod')).toBe(image.digest)

    const verified = await cli('verify', `${registry.host}/cli/app@${image.digest}`, '--to', 'staging', '--to', 'prod', '--no-verify-signature')
    expect(verified.exitCode).toBe(0)
    expect(JSON.parse(verified.stdout).promoted.map((p: { status: string }) => p.status)).toEqual(['verified', 'verified'])
  })

  it('draws a progress line when it runs on a terminal (util-linux script gives it one), and none in a pipe', async () => {
    const image = buildImage({ layerSizes: [64 * 1024, 32 * 1024] })
    await pushImage(registry.url, 'cli/tty', 'build', image)
    const other = await startRegistry()
    try {
      const args = ['promote', `${registry.host}/cli/tty:build`, '--to', `${other.host}/cli/tty:prod`, '--no-verify-signature']
      const quoted = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ')
      const tty = await runProcess('script', ['-qec', `DOCKER_CONFIG=/nonexistent-oci-promote-cli ${quoted}`, '/dev/null'])
      expect(tty.exitCode).toBe(0)
      expect(tty.stdout).toContain(`\r\x1b[2Kcopying to ${other.host}/cli/tty: 3/3 blobs`)
      expect(tty.stdout).toContain('"status": "created"')
      const piped = await cli('promote', `${registry.host}/cli/tty:build`, '--to', `${other.host}/cli/tty:staging`, '--no-verify-signature')
      expect(piped.exitCode).toBe(0)
      expect(piped.stderr).not.toContain('copying to')
    } finally {
      await other.stop()
    }
  })

  it('exits 1 when the gate refuses, writing nothing, and 2 on bad usage or input', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'cli/unsigned', 'build', image)
    const refused = await cli('promote', `${registry.host}/cli/unsigned:build`, '--to', 'prod', '--public-key', (await keyPairSigner()).publicKeyPem)
    expect(refused.exitCode).toBe(1)
    expect(refused.stdout).toBe('')
    expect(refused.stderr).toContain('oci-promote: SIGNATURE_NOT_VERIFIED: signature policy not satisfied')
    expect(await tagDigest(registry.url, 'cli/unsigned', 'prod')).toBeUndefined()

    for (const [args, message] of [
      [['promote', `${registry.host}/cli/unsigned:build`, '--to', 'prod', '--no-such-flag', 'x'], 'unknown flag --no-such-flag'],
      [['promote', `${registry.host}/cli/unsigned:build`, '--to', 'prod', '--concurrency', '0', '--no-verify-signature'], 'INPUT_INVALID: input "concurrency"'],
      [['promote', `${registry.host}/cli/unsigned:build`, '--to', 'prod'], 'SIGNATURE_POLICY_MISSING'],
      [['deploy'], 'unknown command "deploy"']
    ] as const) {
      const bad = await cli(...args)
      expect(bad.exitCode).toBe(2)
      expect(bad.stderr).toContain(message)
    }
    expect((await cli('--version')).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it('stages and then promotes a release given as --release, printing the release output', async () => {
    const images = [buildImage(), buildImage()]
    await Promise.all(images.map((image, i) => pushImage(registry.url, `cli/rel${i}`, 'build', image)))
    const release = JSON.stringify(images.map((_, i) => ({ image: `${registry.host}/cli/rel${i}:build` })))
    const clash = await cli('stage', '--release', release, '--to', `${registry.host}/cli/one:prod`, '--no-verify-signature')
    expect(clash.exitCode).toBe(2)
    expect(clash.stderr).toContain(`${registry.host}/cli/one:prod is a destination of both release entry 1 and release entry 2`)
    const staged = await cli('stage', '--release', release, '--to', 'prod', '--no-verify-signature')
    expect(staged.exitCode).toBe(0)
    expect(JSON.parse(staged.stdout).promoted.map((p: { status: string }) => p.status)).toEqual(['staged', 'staged'])
    const run = await cli('promote', '--release', release, '--to', 'prod', '--no-verify-signature')
    expect(run.exitCode).toBe(0)
    expect(JSON.parse(run.stdout).release).toEqual(
      images.map((image, i) => ({ source: `${registry.host}/cli/rel${i}:build`, image: `${registry.host}/cli/rel${i}@${image.digest}`, digest: image.digest }))
    )
    expect(run.stderr).toContain('release of 2 images')
  })
})
