// The bundled action exactly as the runner runs it: `node dist/index.js` with
// INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, against the real registry.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { existsSync } from 'node:fs'
import { buildImage, buildMultiArch } from '../scripts/lib/images.ts'
import { ACTION_ENTRY, runAction } from '../scripts/lib/runner.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'

let registry: RunningRegistry

beforeAll(async () => {
  if (!existsSync(ACTION_ENTRY)) throw new Error(`${ACTION_ENTRY} is missing: run npm run build`)
  registry = await startRegistry()
})
afterAll(async () => {
  await registry?.stop()
})

describe('dist/index.js', () => {
  it('promotes, sets the outputs and writes the job summary', async () => {
    const index = buildMultiArch(2)
    const previous = buildImage()
    await pushImage(registry.url, 'acme/app', 'build-42', index)
    await pushImage(registry.url, 'acme/app', 'prod', previous)

    const run = await runAction({
      image: `${registry.host}/acme/app:build-42`,
      digest: index.digest,
      to: `staging\n${registry.host}/acme/mirror:staging, prod`,
      'verify-signature': 'false'
    })
    expect(run.stderr).toBe('')
    expect(run.exitCode).toBe(0)
    expect(run.outputs['digest']).toBe(index.digest)
    expect(run.outputs['image']).toBe(`${registry.host}/acme/app@${index.digest}`)
    expect(JSON.parse(run.outputs['promoted']!)).toEqual([
      { reference: `${registry.host}/acme/app:staging`, digest: index.digest, 'previous-digest': null, status: 'created' },
      { reference: `${registry.host}/acme/mirror:staging`, digest: index.digest, 'previous-digest': null, status: 'created' },
      { reference: `${registry.host}/acme/app:prod`, digest: index.digest, 'previous-digest': previous.digest, status: 'moved' }
    ])
    for (const [repo, tag] of [['acme/app', 'staging'], ['acme/mirror', 'staging'], ['acme/app', 'prod']] as const) {
      expect(await tagDigest(registry.url, repo, tag)).toBe(index.digest)
    }
    expect(run.summary).toContain('### oci-promote: Promoted')
    expect(run.summary).toContain('2 platforms: linux/amd64, linux/arm64/v8')
    expect(run.summary).toContain('not verified: verify-signature is false')
    expect(run.summary).toContain(`image <code>${registry.host}/acme/app@${previous.digest}</code>, to <code>prod</code>`)

    const verify = await runAction({ image: `${registry.host}/acme/app@${index.digest}`, to: 'staging\nprod', mode: 'verify', 'verify-signature': 'false' })
    expect(verify.exitCode).toBe(0)
    expect(JSON.parse(verify.outputs['promoted']!).map((p: { status: string }) => p.status)).toEqual(['verified', 'verified'])
  })

  it('fails closed when signature verification is left on, writing nothing', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'acme/closed', 'build', image)
    const run = await runAction({ image: `${registry.host}/acme/closed:build`, to: 'prod' })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain('::error::input "verify-signature" is true, but this version of oci-promote cannot verify signatures yet')
    expect(run.stdout).toContain('Set verify-signature: false')
    expect(await tagDigest(registry.url, 'acme/closed', 'prod')).toBeUndefined()
  })

  it.each([
    [{ image: 'Ghcr.io/Bad Ref' }, 'input "image": "Ghcr.io/Bad Ref" is not a valid image reference'],
    [{ image: 'ghcr.io/a/b', digest: 'sha256:1234' }, 'input "digest": "sha256:1234" is not a sha256 digest'],
    [{ image: 'ghcr.io/a/b' }, 'input "to": is required'],
    [{ image: 'ghcr.io/a/b', to: 'x', mode: 'yolo' }, 'input "mode": "yolo" is not one of promote, plan, verify'],
    [{ image: 'ghcr.io/a/b', to: 'x', 'immutable-tags': '(' }, 'input "immutable-tags": "(" is not a valid regular expression'],
    [{ image: 'ghcr.io/a/b', to: 'x', concurrency: '0' }, 'input "concurrency": "0" must be a whole number from 1 to 64'],
    [{ image: 'ghcr.io/a/b', to: 'x', 'verify-blobs': 'maybe' }, 'input "verify-blobs": "maybe" is not a boolean'],
    [{ image: 'ghcr.io/a/b', to: 'ok\n-bad-' }, 'input "to": "-bad-" is not a valid image reference'],
    [{ image: 'ghcr.io/a/b', to: 'x', 'insecure-registries': 'http://x' }, 'input "insecure-registries": "http://x" is not a registry host']
  ])('rejects bad input %j before touching any registry', async (inputs, message) => {
    const run = await runAction({ 'verify-signature': 'false', ...inputs })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(`::error::${message}`)
    expect(run.outputs).toEqual({})
  })
})
