// The bundled action exactly as the runner runs it: `node dist/index.js` with
// INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, against the real registry.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { existsSync } from 'node:fs'
import { buildImage, buildMultiArch } from '../scripts/lib/images.ts'
import { ACTION_ENTRY, runAction } from '../scripts/lib/runner.ts'
import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as connectSocket } from 'node:net'
import { HTPASSWD, USERS, basicAuthorization, pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { startFakeSigstore } from './support/fake-sigstore.ts'
import { TestCA, TestRekor, keyPairSigner, pushLegacyTag, signatureLayer, simpleSigningPayload, trustedRootJson } from './support/sigstore.ts'

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
    const image = `${registry.host}/acme/app@${index.digest}`
    expect(JSON.parse(run.outputs['promoted']!)).toEqual([
      { reference: `${registry.host}/acme/app:staging`, digest: index.digest, 'previous-digest': null, status: 'created', image },
      { reference: `${registry.host}/acme/mirror:staging`, digest: index.digest, 'previous-digest': null, status: 'created', image },
      { reference: `${registry.host}/acme/app:prod`, digest: index.digest, 'previous-digest': previous.digest, status: 'moved', image }
    ])
    for (const [repo, tag] of [
      ['acme/app', 'staging'],
      ['acme/mirror', 'staging'],
      ['acme/app', 'prod']
    ] as const) {
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

  it('writes a debug line per request only when the run asks for debug output (RUNNER_DEBUG=1)', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'acme/quiet', 'build', image)
    const inputs = { image: `${registry.host}/acme/quiet:build`, to: 'build', mode: 'verify', 'verify-signature': 'false' }
    const quiet = await runAction(inputs, { RUNNER_DEBUG: '' })
    expect(quiet.exitCode).toBe(0)
    expect(quiet.stdout).not.toContain('::debug::')
    const debugging = await runAction(inputs, { RUNNER_DEBUG: '1' })
    expect(debugging.exitCode).toBe(0)
    expect(debugging.stdout).toContain(`::debug::GET http://${registry.host}/v2/acme/quiet/manifests/build -> 200`)
  })

  it('fails closed when signature verification is left on without a policy, writing nothing', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'acme/closed', 'build', image)
    const run = await runAction({ image: `${registry.host}/acme/closed:build`, to: 'prod' })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain('::error::SIGNATURE_POLICY_MISSING: input "verify-signature" is true, but no signature policy is set')
    expect(run.stdout).toContain('Set public-key (cosign --key), or certificate-identity')
    expect(run.stdout).toContain('or set verify-signature: false')
    expect(await tagDigest(registry.url, 'acme/closed', 'prod')).toBeUndefined()
  })

  it('verifies a keyless signature against a trusted root, carries it, and reports who signed', async () => {
    const ca = await TestCA.create()
    const rekor = await TestRekor.create()
    const dir = await mkdtemp(join(tmpdir(), 'oci-promote-action-trust-'))
    await writeFile(join(dir, 'trusted_root.json'), JSON.stringify(trustedRootJson({ ca, rekor })))
    const identity = 'https://github.com/acme/release/.github/workflows/build.yml@refs/tags/v1.0.0'
    const image = buildImage()
    await pushImage(registry.url, 'acme/signed', 'build', image)
    await pushLegacyTag(registry.url, 'acme/signed', image.digest, 'sig', [
      signatureLayer(await ca.issue(identity), simpleSigningPayload('acme/signed', image.digest), rekor)
    ])

    const run = await runAction({
      image: `${registry.host}/acme/signed:build`,
      to: `${registry.host}/acme/prod:live`,
      'certificate-identity-regexp': 'https://github\\.com/acme/release/\\.github/workflows/build\\.yml@refs/tags/v.*',
      'trusted-root': join(dir, 'trusted_root.json')
    })
    expect(run.stdout).not.toContain('::error::')
    expect(run.exitCode).toBe(0)
    expect(JSON.parse(run.outputs['verified']!)).toEqual([
      expect.objectContaining({
        format: 'cosign-signature',
        subject: image.digest,
        identity,
        issuer: 'https://token.actions.githubusercontent.com',
        'log-index': expect.any(String)
      })
    ])
    expect(run.summary).toContain('verified before promoting; 1 signature satisfied the policy')
    expect(run.summary).toContain(`<code>${identity}</code>`)
    expect(await tagDigest(registry.url, 'acme/prod', `${image.digest.replace(':', '-')}.sig`)).toBeDefined()
  })

  it('refuses an image signed by another key, through the public-key input given as a file', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'acme/keyed', 'build', image)
    await pushLegacyTag(registry.url, 'acme/keyed', image.digest, 'sig', [
      signatureLayer(await keyPairSigner(), simpleSigningPayload('acme/keyed', image.digest))
    ])
    const dir = await mkdtemp(join(tmpdir(), 'oci-promote-action-key-'))
    await writeFile(join(dir, 'cosign.pub'), (await keyPairSigner()).publicKeyPem)
    const run = await runAction({ image: `${registry.host}/acme/keyed:build`, to: 'prod', 'public-key': join(dir, 'cosign.pub') })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain('::error::SIGNATURE_NOT_VERIFIED: signature policy not satisfied (key sha256:')
    expect(run.stdout).toContain('SIGNATURE_ERROR: signature verification failed')
    expect(await tagDigest(registry.url, 'acme/keyed', 'prod')).toBeUndefined()
  })

  it('signs a promotion record with signing-key, and a later promotion opens its gate on it', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'acme/gated', 'build', image)
    const key = await keyPairSigner()
    const privatePem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const toStaging = await runAction(
      {
        image: `${registry.host}/acme/gated:build`,
        to: 'staging',
        'verify-signature': 'false',
        environment: 'staging',
        'attest-promotion': 'true',
        'signing-key': privatePem
      },
      { GITHUB_REPOSITORY: 'acme/app', GITHUB_RUN_ID: '7', GITHUB_ACTOR: 'octocat' }
    )
    expect(toStaging.stdout).not.toContain('::error::')
    expect(toStaging.summary).toContain('**Promotion record:** signed and attached at')
    for (const line of privatePem.split('\n').filter((l) => l && !l.startsWith('-----'))) expect(toStaging.stdout).toContain(`::add-mask::${line}`)

    const denied = await runAction({
      image: `${registry.host}/acme/gated:build`,
      to: 'prod',
      'verify-signature': 'false',
      'require-environment': 'production-canary',
      'promotion-public-key': key.publicKeyPem
    })
    expect(denied.exitCode).toBe(1)
    expect(denied.stdout).toContain('none for "production-canary"')

    const toProd = await runAction({
      image: `${registry.host}/acme/gated:staging`,
      to: 'prod',
      'verify-signature': 'false',
      'require-environment': 'staging',
      'promotion-public-key': key.publicKeyPem
    })
    expect(toProd.stdout).not.toContain('::error::')
    expect(toProd.summary).toContain('→ promoted to <code>staging</code> by octocat in run acme/app#7')
    expect(await tagDigest(registry.url, 'acme/gated', 'prod')).toBe(image.digest)
  })

  /** A key that signs promotion records, and the inputs that record promotions into production with it. */
  async function productionRecords() {
    const key = await keyPairSigner()
    const privatePem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    return { key, inputs: { 'verify-signature': 'false', environment: 'production', 'attest-promotion': 'true', 'signing-key': privatePem } }
  }

  it('a rollback whose destinations go back to different digests names no single digest in its outputs', async () => {
    const [a, b, c] = [buildImage(), buildImage(), buildImage()]
    for (const [tag, image] of [
      ['a', a],
      ['b', b],
      ['c', c]
    ] as const)
      await pushImage(registry.url, 'acme/split', tag, image)
    const { key, inputs: record } = await productionRecords()
    for (const [tag, to] of [
      ['a', 'prod-eu'],
      ['b', 'prod-us'],
      ['c', 'prod-eu\nprod-us']
    ] as const) {
      const step = await runAction({ image: `${registry.host}/acme/split:${tag}`, to, ...record })
      expect(step.stdout).not.toContain('::error::')
    }
    const back = await runAction({
      mode: 'rollback',
      image: `${registry.host}/acme/split`,
      to: 'prod-eu\nprod-us',
      'promotion-public-key': key.publicKeyPem,
      ...record
    })
    expect(back.stdout).not.toContain('::error::')
    expect(back.exitCode).toBe(0)
    expect(back.outputs['digest']).toBe('')
    expect(back.outputs['image']).toBe('')
    expect(JSON.parse(back.outputs['promoted']!)).toEqual([
      { reference: `${registry.host}/acme/split:prod-eu`, digest: a.digest, 'previous-digest': c.digest, status: 'moved' },
      { reference: `${registry.host}/acme/split:prod-us`, digest: b.digest, 'previous-digest': c.digest, status: 'moved' }
    ])
    expect(back.stdout).toContain('the destinations now hold different digests, so the digest and image outputs are empty')
    expect(back.summary).toContain('went back to different digests')
    expect(await tagDigest(registry.url, 'acme/split', 'prod-eu')).toBe(a.digest)
    expect(await tagDigest(registry.url, 'acme/split', 'prod-us')).toBe(b.digest)
  })

  /** A local fake of GitHub's deployments API (create, then a status), answering as documented; what it was sent. */
  async function withDeploymentsApi(
    use: (env: Record<string, string>, seen: { method: string; url: string; body: Record<string, unknown> }[]) => Promise<void>
  ) {
    const seen: { method: string; url: string; body: Record<string, unknown> }[] = []
    const api = createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      seen.push({ method: req.method ?? '', url: req.url ?? '', body: chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {} })
      if (req.url === '/repos/acme/app/deployments')
        return void res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":99,"url":"http://x/deployments/99"}')
      if (req.url === '/repos/acme/app/deployments/99/statuses') return void res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":1}')
      res.writeHead(404).end('{}')
    })
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r))
    try {
      await use(
        {
          GITHUB_REPOSITORY: 'acme/app',
          GITHUB_SHA: 'abc123',
          GITHUB_RUN_ID: '5',
          GITHUB_SERVER_URL: 'https://github.example',
          GITHUB_API_URL: `http://127.0.0.1:${(api.address() as { port: number }).port}`
        },
        seen
      )
    } finally {
      await new Promise((r) => api.close(r))
    }
  }
  const deployment = { 'verify-signature': 'false', environment: 'production', 'github-deployment': 'true', 'github-token': 'ghs_deploy' }

  it('records a GitHub deployment of the environment, against a local fake of the API', async () => {
    const image = buildImage()
    await pushImage(registry.url, 'acme/deployed', 'build', image)
    await withDeploymentsApi(async (env, seen) => {
      const run = await runAction({ image: `${registry.host}/acme/deployed:build`, to: 'prod', ...deployment }, env)
      expect(run.stdout).not.toContain('::warning::')
      expect(run.stdout).toContain('GitHub deployment 99 of production recorded')
      expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /repos/acme/app/deployments', 'POST /repos/acme/app/deployments/99/statuses'])
      expect(seen[0]!.body).toMatchObject({
        ref: 'abc123',
        environment: 'production',
        required_contexts: [],
        payload: { image: `${registry.host}/acme/deployed@${image.digest}`, digest: image.digest }
      })
      expect(seen[1]!.body).toMatchObject({ state: 'success', log_url: 'https://github.example/acme/app/actions/runs/5' })
    })
  })

  it('records a release as one GitHub deployment whose payload lists every image', async () => {
    const images = [buildImage(), buildImage()]
    await pushImage(registry.url, 'acme/api', 'build', images[0]!)
    await pushImage(registry.url, 'acme/web', 'build', images[1]!)
    await pushImage(registry.url, 'acme/web', 'prod', images[1]!)
    const release = JSON.stringify([{ image: `${registry.host}/acme/api:build` }, { image: `${registry.host}/acme/web:build` }])
    await withDeploymentsApi(async (env, seen) => {
      const run = await runAction({ release, to: 'prod', ...deployment }, env)
      expect(run.exitCode).toBe(0)
      expect(run.stdout).toContain('GitHub deployment 99 of production recorded')
      expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /repos/acme/app/deployments', 'POST /repos/acme/app/deployments/99/statuses'])
      expect(seen[0]!.body).toMatchObject({
        environment: 'production',
        // web already held the digest: one tag moved, and the payload still names both images of the release.
        description: 'release of 2 images → 1 tag moved',
        payload: {
          images: [
            { image: `${registry.host}/acme/api@${images[0]!.digest}`, digest: images[0]!.digest, destinations: [`${registry.host}/acme/api:prod`] },
            { image: `${registry.host}/acme/web@${images[1]!.digest}`, digest: images[1]!.digest, destinations: [`${registry.host}/acme/web:prod`] }
          ]
        }
      })
      expect(seen[1]!.body).toMatchObject({ state: 'success', description: '2 images promoted by oci-promote' })
    })
  })

  it('rolls production back through mode: rollback', async () => {
    const { key, inputs: signing } = await productionRecords()
    const good = buildImage()
    const bad = buildImage()
    await pushImage(registry.url, 'acme/rb', 'good', good)
    await pushImage(registry.url, 'acme/rb', 'bad', bad)
    expect((await runAction({ image: `${registry.host}/acme/rb:good`, to: 'prod', ...signing })).exitCode).toBe(0)
    expect((await runAction({ image: `${registry.host}/acme/rb:bad`, to: 'prod', ...signing })).exitCode).toBe(0)
    const run = await runAction({ image: `${registry.host}/acme/rb`, to: 'prod', mode: 'rollback', 'promotion-public-key': key.publicKeyPem, ...signing })
    expect(run.stdout).not.toContain('::error::')
    expect(JSON.parse(run.outputs['promoted']!)).toEqual([
      {
        reference: `${registry.host}/acme/rb:prod`,
        digest: good.digest,
        'previous-digest': bad.digest,
        status: 'moved',
        image: `${registry.host}/acme/rb@${good.digest}`
      }
    ])
    expect(await tagDigest(registry.url, 'acme/rb', 'prod')).toBe(good.digest)
    expect(run.summary).toContain('### oci-promote: Rolled back')
  })

  it('rolls a whole release back with the document that promoted it', async () => {
    const records = await productionRecords()
    const key = records.key
    const signing = { ...records.inputs, to: 'prod' }
    const services = ['acme/rel-api', 'acme/rel-web'].map((repo) => ({ repo, good: buildImage(), bad: buildImage() }))
    for (const s of services) {
      await pushImage(registry.url, s.repo, 'good', s.good)
      await pushImage(registry.url, s.repo, 'bad', s.bad)
    }
    const release = (build: 'good' | 'bad') => JSON.stringify(services.map((s) => ({ image: `${registry.host}/${s.repo}:${build}`, digest: s[build].digest })))
    expect((await runAction({ release: release('good'), ...signing })).exitCode).toBe(0)
    expect((await runAction({ release: release('bad'), ...signing })).exitCode).toBe(0)

    const run = await runAction({ release: release('bad'), mode: 'rollback', 'promotion-public-key': key.publicKeyPem, ...signing })
    expect(run.stdout).not.toContain('::error::')
    expect(run.exitCode).toBe(0)
    expect(JSON.parse(run.outputs['release']!)).toEqual(
      services.map((s) => ({
        source: `${registry.host}/${s.repo}@${s.good.digest}`,
        image: `${registry.host}/${s.repo}@${s.good.digest}`,
        digest: s.good.digest
      }))
    )
    expect(JSON.parse(run.outputs['promoted']!).map((p: { reference: string; 'previous-digest': string }) => [p.reference, p['previous-digest']])).toEqual(
      services.map((s) => [`${registry.host}/${s.repo}:prod`, s.bad.digest])
    )
    for (const s of services) expect(await tagDigest(registry.url, s.repo, 'prod')).toBe(s.good.digest)
    expect(run.summary).toContain('### oci-promote: Release Rolled back')
    // The same document again: production no longer holds what it names, so nothing moves.
    const again = await runAction({ release: release('bad'), mode: 'rollback', 'promotion-public-key': key.publicKeyPem, ...signing })
    expect(again.exitCode).toBe(1)
    expect(again.stdout).toContain('::error::NOT_PROMOTED: ')
    expect(
      services.some((s) => again.stdout.includes(`${registry.host}/${s.repo}:prod holds ${s.good.digest}, not ${s.bad.digest} that the rollback names`))
    ).toBe(true)
    for (const s of services) expect(await tagDigest(registry.url, s.repo, 'prod')).toBe(s.good.digest)
  })

  it('signs a promotion record keyless (OIDC → Fulcio → Rekor) and gates the next promotion on that identity', async () => {
    const ca = await TestCA.create()
    const rekor = await TestRekor.create()
    const identity = 'https://github.com/acme/app/.github/workflows/deploy.yml@refs/heads/main'
    // A GitHub Actions certificate: who signed (the promotion workflow), from where, on which runner.
    const sigstore = await startFakeSigstore(ca, rekor, identity, {
      '1.3.6.1.4.1.57264.1.9': identity,
      '1.3.6.1.4.1.57264.1.11': 'self-hosted',
      '1.3.6.1.4.1.57264.1.12': 'https://github.com/acme/app',
      '1.3.6.1.4.1.57264.1.14': 'refs/heads/main'
    })
    const dir = await mkdtemp(join(tmpdir(), 'oci-promote-keyless-'))
    await writeFile(join(dir, 'trusted_root.json'), JSON.stringify(trustedRootJson({ ca, rekor })))
    try {
      const image = buildImage()
      await pushImage(registry.url, 'acme/keyless', 'build', image)
      const signed = await runAction(
        {
          image: `${registry.host}/acme/keyless:build`,
          to: 'staging',
          'verify-signature': 'false',
          environment: 'staging',
          'attest-promotion': 'true',
          'fulcio-url': sigstore.url,
          'rekor-url': sigstore.url
        },
        sigstore.oidcEnv
      )
      expect(signed.stdout).not.toContain('::error::')
      expect(sigstore.requests).toEqual(['GET /oidc', 'POST /api/v2/signingCert', 'POST /api/v1/log/entries'])
      const gated = await runAction({
        image: `${registry.host}/acme/keyless:staging`,
        to: 'prod',
        'verify-signature': 'false',
        'require-environment': 'staging',
        'promotion-identity': identity,
        'trusted-root': join(dir, 'trusted_root.json')
      })
      expect(gated.stdout).not.toContain('::error::')
      expect(gated.summary).toContain(`record signed by <code>${identity}</code>`)
      const wrong = await runAction({
        image: `${registry.host}/acme/keyless:staging`,
        to: 'prod2',
        'verify-signature': 'false',
        'require-environment': 'staging',
        'promotion-identity': identity.replace('deploy', 'other'),
        'trusted-root': join(dir, 'trusted_root.json')
      })
      expect(wrong.exitCode).toBe(1)
      expect(wrong.stdout).toContain('UNTRUSTED_SIGNER_ERROR')
      // The promotion- claims gate on the record's certificate: its workflow, repository and ref hold; its runner does not.
      const claimed = {
        image: `${registry.host}/acme/keyless:staging`,
        'verify-signature': 'false',
        'require-environment': 'staging',
        'promotion-signer-workflow': 'acme/app/.github/workflows/deploy.yml',
        'promotion-source-repository': 'acme/app',
        'promotion-source-ref': 'refs/heads/main',
        'trusted-root': join(dir, 'trusted_root.json')
      }
      const held = await runAction({ ...claimed, to: 'prod3' })
      expect(held.stdout).not.toContain('::error::')
      const hosted = await runAction({ ...claimed, to: 'prod4', 'promotion-deny-self-hosted-runners': 'true' })
      expect(hosted.exitCode).toBe(1)
      expect(hosted.stdout).toContain('Runner Environment is "self-hosted", and promotion-deny-self-hosted-runners asks for github-hosted')
      expect(await tagDigest(registry.url, 'acme/keyless', 'prod4')).toBeUndefined()
    } finally {
      await sigstore.stop()
    }
  })

  it('explains the missing id-token permission for keyless promotion records', async () => {
    const run = await runAction({ image: 'oci:does-not-matter:x', to: 'y', 'verify-signature': 'false', environment: 'staging', 'attest-promotion': 'true' })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain('Add "permissions: id-token: write" to the job, or set signing-key')
  })

  it.each([
    [{ image: 'ghcr.io/a/b', to: 'x', 'attest-promotion': 'true' }, 'input "attest-promotion": needs environment'],
    [{ image: 'ghcr.io/a/b', to: 'x', mode: 'rollback' }, 'input "environment": is required with mode: rollback'],
    [{ image: 'ghcr.io/a/b', to: 'x', mode: 'rollback', environment: 'production' }, 'input "mode": needs a policy for who may have promoted'],
    [{ image: 'ghcr.io/a/b', to: 'x', 'require-environment': 'staging' }, 'input "require-environment": needs a policy for who may have promoted'],
    [
      { image: 'ghcr.io/a/b', to: 'x', 'require-environment': 'staging', 'promotion-identity': 'a', 'promotion-identity-regexp': 'b' },
      'input "promotion-identity-regexp": cannot be combined with promotion-identity'
    ],
    [
      {
        image: 'ghcr.io/a/b',
        to: 'x',
        environment: 'staging',
        'attest-promotion': 'true',
        'signing-key': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'
      },
      'input "signing-key": not a PEM private key'
    ],
    [{ image: 'ghcr.io/a/b', to: 'x', 'public-key': 'not a key and not a file' }, 'input "public-key": is neither a PEM public key nor a readable file'],
    [
      { image: 'ghcr.io/a/b', to: 'x', 'public-key': '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' },
      'input "public-key": is not a PEM public key'
    ],
    [
      { image: 'ghcr.io/a/b', to: 'x', 'certificate-identity': 'a', 'certificate-identity-regexp': 'b' },
      'input "certificate-identity-regexp": cannot be combined with certificate-identity'
    ],
    [
      { image: 'ghcr.io/a/b', to: 'x', 'certificate-identity': '', 'certificate-identity-regexp': '([' },
      'input "certificate-identity-regexp": "([" is not a valid regular expression'
    ],
    [{ image: 'ghcr.io/a/b', to: 'x', 'certificate-identity': 'a', 'signed-platforms': 'some' }, 'input "signed-platforms": "some" is not one of index, all'],
    [
      { image: 'ghcr.io/a/b', to: 'x', 'certificate-identity': 'a', 'trusted-root': '/nonexistent/trusted_root.json' },
      'input "trusted-root": cannot read a trusted_root.json from /nonexistent/trusted_root.json'
    ]
  ])('rejects a bad signature or promotion policy %j before promoting', async (inputs, message) => {
    const run = await runAction({ 'verify-signature': 'true', 'certificate-identity': 'x', ...inputs })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(`::error::INPUT_INVALID: ${message}`)
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
    expect(run.stdout).toContain(`::error::INPUT_INVALID: ${message}`)
    expect(run.outputs).toEqual({})
  })
})

// Code the bundle loads only when a run needs it: the proxy agent and @actions/exec for credential helpers.
describe('dist/index.js, on-demand paths', () => {
  it('gets credentials from a docker credential helper program', async () => {
    const secured = await startRegistry({ auth: { htpasswd: HTPASSWD } })
    try {
      const image = buildImage()
      await pushImage(secured.url, 'acme/app', 'build', image, basicAuthorization('promoter'))
      const dir = await mkdtemp(join(tmpdir(), 'oci-promote-helper-'))
      const helper = join(dir, 'docker-credential-fixture')
      await writeFile(
        helper,
        `#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = "${secured.host}" ] || exit 1\necho '{"ServerURL":"${secured.host}","Username":"promoter","Secret":"${USERS.promoter}"}'\n`
      )
      await chmod(helper, 0o755)
      await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { [secured.host]: 'fixture' } }))

      const run = await runAction(
        { image: `${secured.host}/acme/app:build`, to: 'prod', 'verify-signature': 'false' },
        { DOCKER_CONFIG: dir, PATH: `${dir}:${process.env['PATH']}` }
      )
      expect(run.stdout).not.toContain('::error::')
      expect(run.exitCode).toBe(0)
      expect(await tagDigest(secured.url, 'acme/app', 'prod', basicAuthorization('reader'))).toBe(image.digest)
    } finally {
      await secured.stop()
    }
  })

  it('sends every request through the proxy HTTPS_PROXY/HTTP_PROXY names', async () => {
    // undici sends plain-http requests to the proxy in absolute form and tunnels https with CONNECT.
    const tunnels: string[] = []
    const proxy = createServer((req, res) => {
      const target = new URL(req.url ?? '')
      tunnels.push(target.host)
      const upstream = httpRequest(target, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    })
    proxy.on('connect', (req, client, head) => {
      tunnels.push(req.url ?? '')
      const [host, port] = (req.url ?? '').split(':')
      const upstream = connectSocket(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        upstream.write(head)
        upstream.pipe(client).pipe(upstream)
      })
      upstream.on('error', () => client.destroy())
      client.on('error', () => upstream.destroy())
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const image = buildImage()
      await pushImage(registry.url, 'acme/proxied', 'build', image)
      const address = proxy.address() as { port: number }
      const run = await runAction(
        { image: `${registry.host}/acme/proxied:build`, to: 'prod', 'verify-signature': 'false' },
        { HTTP_PROXY: `http://127.0.0.1:${address.port}`, HTTPS_PROXY: `http://127.0.0.1:${address.port}`, NO_PROXY: '', no_proxy: '' }
      )
      expect(run.stdout).not.toContain('::error::')
      expect(run.exitCode).toBe(0)
      expect(tunnels.length).toBeGreaterThan(0)
      expect(new Set(tunnels)).toEqual(new Set([registry.host]))
      expect(await tagDigest(registry.url, 'acme/proxied', 'prod')).toBe(image.digest)
    } finally {
      proxy.closeAllConnections()
      await new Promise((resolve) => proxy.close(resolve))
    }
  })
})
