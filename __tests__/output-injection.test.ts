// Workflow-command injection: text a registry, a certificate, a bundle or the GitHub API controls reaches the log,
// errors, annotations and the job summary of dist/index.js run as the runner runs it, and none of it may become a
// workflow command (`::set-output::`, `::notice::`, `##[...]`) or a forged line of its own.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildImage, buildIndex } from '../scripts/lib/images.ts'
import { runAction, type ActionRun } from '../scripts/lib/runner.ts'
import { commandSafe, untrusted } from '../src/untrusted.ts'
import { startFakeServer, type FakeServer } from './support/fake-registry.ts'
import { pushImage, startRegistry, type RunningRegistry } from './support/registry.ts'
import {
  TestCA,
  TestRekor,
  dsseBundle,
  inTotoStatement,
  keyPairSigner,
  pushBundleReferrer,
  pushLegacyTag,
  signatureLayer,
  simpleSigningPayload,
  trustedRootJson
} from './support/sigstore.ts'

/** Every way a line of output could turn into a command or a fake line: \n, \r, U+2028, `::` at a line start, `##[` anywhere. */
const HOSTILE = 'x\n::notice::INJECTED\r::set-output name=image::evil.example/app@sha256:0\u2028##[error]INJECTED\n  ::add-mask::x'
const OWN_COMMANDS = /^::(error|warning|debug|add-mask)::/

let registry: RunningRegistry
const servers: (FakeServer | Server)[] = []

beforeAll(async () => {
  registry = await startRegistry()
})
afterAll(async () => {
  await Promise.all(servers.map((s) => ('stop' in s ? s.stop() : new Promise((r) => s.close(r)))))
  await registry?.stop()
})

/** What the runner would read from stdout: it splits at \r and \n, trims, and acts on `::` at a line start and `##[` anywhere. */
function expectNoInjection(run: ActionRun): void {
  for (const line of run.stdout.split(/\r\n|\r|\n/)) {
    const trimmed = line.trim()
    if (trimmed.startsWith('::')) expect(trimmed).toMatch(OWN_COMMANDS)
    expect(line).not.toContain('##[')
    expect(line).not.toContain('\u2028')
  }
  expect(run.stdout).not.toContain('INJECTED\n')
  expect(run.outputs['image'] ?? '').not.toContain('evil')
  for (const line of run.summary.split(/\r\n|\r|\n/)) {
    expect(line).not.toMatch(/^\s*(::|##\[)/)
    expect(line).not.toContain('INJECTED<')
  }
}

/** dist/index.js promoting `repo:build` to prod, gated on a staging record signed by `promotionKey`. */
function promoteGatedOnStaging(repo: string, promotionKey: string): ReturnType<typeof runAction> {
  return runAction({
    image: `${registry.host}/${repo}:build`,
    to: 'prod',
    'verify-signature': 'false',
    'require-environment': 'staging',
    'promotion-public-key': promotionKey
  })
}

describe('the escaping helpers', () => {
  it('make hostile text one visible line with no command in it', () => {
    const shown = untrusted(HOSTILE)
    expect(shown).not.toMatch(/[\r\n\u2028]/)
    expect(shown).not.toContain('::')
    expect(shown).not.toContain('##[')
    expect(shown).toBe(
      'x\\n:\\x3anotice:\\x3aINJECTED\\r:\\x3aset-output name=image:\\x3aevil.example/app@sha256:0\\u2028#\\x23[error]INJECTED\\n  :\\x3aadd-mask:\\x3ax'
    )
    expect(untrusted('a'.repeat(600))).toBe(`${'a'.repeat(512)}…(88 more characters)`)
  })

  it('guard every line of a whole message, keeping its own line breaks', () => {
    expect(commandSafe('first\n  ::set-output name=a::b\nthird ##[group]x\rfourth')).toBe('first\n  :\\x3aset-output name=a::b\nthird #\\x23[group]x\\rfourth')
  })
})

describe('hostile text in every field that reaches output', () => {
  it("a referrer's layer media type, when a gate stays closed", async () => {
    const image = buildImage()
    await pushImage(registry.url, 'inject/gate', 'build', image)
    const key = await keyPairSigner()
    const bundle = dsseBundle(key, inTotoStatement(image.digest, 'https://oci-promote.dev/promotion/v1'))
    await pushBundleReferrer(registry.url, 'inject/gate', image, bundle, 'https://oci-promote.dev/promotion/v1', HOSTILE)
    const run = await promoteGatedOnStaging('inject/gate', key.publicKeyPem)
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain('its layer is x\\n:\\x3anotice:\\x3aINJECTED')
    expectNoInjection(run)
  })

  it("a certificate's identity and a hostile predicate type, when a signature is refused", async () => {
    const ca = await TestCA.create()
    const rekor = await TestRekor.create()
    const dir = await mkdtemp(join(tmpdir(), 'oci-promote-inject-'))
    await writeFile(join(dir, 'trusted_root.json'), JSON.stringify(trustedRootJson({ ca, rekor })))
    const image = buildImage()
    await pushImage(registry.url, 'inject/san', 'build', image)
    const signer = await ca.issue(`https://github.com/acme/app${HOSTILE.replace(/\u2028/g, '')}`)
    await pushLegacyTag(registry.url, 'inject/san', image.digest, 'sig', [signatureLayer(signer, simpleSigningPayload('inject/san', image.digest), rekor)])
    const trusted = await ca.issue('https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main')
    await pushBundleReferrer(registry.url, 'inject/san', image, dsseBundle(trusted, inTotoStatement(image.digest, HOSTILE), rekor), HOSTILE)
    const run = await runAction({
      image: `${registry.host}/inject/san:build`,
      to: 'prod',
      'certificate-identity': 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main',
      'trusted-root': join(dir, 'trusted_root.json')
    })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain('its certificate\'s subject alternative name is not plain printable ASCII: "https://github.com/acme/appx\\x0a:\\x3anotice')
    expect(run.stdout).toContain('it is an attestation of type x\\n:\\x3anotice')
    expectNoInjection(run)
  })

  it('platform names of an index, in the log and the job summary of a run that succeeds', async () => {
    const child = buildImage({ platform: { os: `<img src=x>|**bold**${HOSTILE}`, architecture: 'amd64' } })
    const index = buildIndex([child])
    await pushImage(registry.url, 'inject/platforms', 'build', index)
    const run = await runAction({ image: `${registry.host}/inject/platforms:build`, to: 'prod', 'verify-signature': 'false' })
    expect(run.exitCode).toBe(0)
    // Markdown and HTML are escaped too: no tag, no table cell, no emphasis, and the backslashes of the escapes stay visible.
    expect(run.summary).toContain('1 platforms: &#60;img src=x&#62;&#124;&#42;&#42;bold&#42;&#42;x&#92;n:&#92;x3anotice:&#92;x3aINJECTED')
    expectNoInjection(run)
  })

  it("a signed promotion record's own fields, shown in the summary's chain when its gate opens", async () => {
    const image = buildImage()
    await pushImage(registry.url, 'inject/record', 'build', image)
    const key = await keyPairSigner()
    const statement = JSON.parse(inTotoStatement(image.digest, 'https://oci-promote.dev/promotion/v1').toString()) as { predicate: object }
    statement.predicate = {
      environment: 'staging',
      action: 'promote',
      digest: image.digest,
      destinations: [],
      promotedAt: HOSTILE,
      workflow: { actor: HOSTILE, repository: HOSTILE, runId: '7' }
    }
    await pushBundleReferrer(
      registry.url,
      'inject/record',
      image,
      dsseBundle(key, Buffer.from(JSON.stringify(statement))),
      'https://oci-promote.dev/promotion/v1'
    )
    const run = await promoteGatedOnStaging('inject/record', key.publicKeyPem)
    expect(run.exitCode).toBe(0)
    expect(run.summary).toContain('→ promoted to <code>staging</code> by x&#92;n:&#92;x3anotice')
    expectNoInjection(run)
  })

  it("a registry's digest header that lies", async () => {
    const image = buildImage()
    const liar = await startFakeServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}')
      res
        .writeHead(200, { 'content-type': image.mediaType, 'docker-content-digest': 'sha256:0 ##[set-output name=image]evil ::notice::INJECTED' })
        .end(image.bytes)
    })
    servers.push(liar)
    const run = await runAction({ image: `${liar.host}/inject/app:build`, to: 'prod', 'verify-signature': 'false' })
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain('is sha256:0 #\\x23[set-output name=image]evil :\\x3anotice')
    expectNoInjection(run)
  })

  it("a registry's error body and authentication challenge", async () => {
    const errors = await startFakeServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}')
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DENIED', message: HOSTILE }] }))
    })
    const challenge = await startFakeServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="##[set-output name=image]evil ::notice::INJECTED"' }).end()
    })
    servers.push(errors, challenge)
    for (const [server, expected] of [
      [errors, 'DENIED: x\\n:\\x3anotice'],
      [challenge, 'names token realm "#\\x23[set-output name=image]evil :\\x3anotice']
    ] as const) {
      const run = await runAction({ image: `${server.host}/inject/app:build`, to: 'prod', 'verify-signature': 'false' })
      expect(run.exitCode).toBe(1)
      expect(run.stdout).toContain(expected)
      expectNoInjection(run)
    }
  })

  it("the GitHub API's error message", async () => {
    const image = buildImage()
    await pushImage(registry.url, 'inject/api', 'build', image)
    const api = createServer((_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: HOSTILE })))
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r))
    servers.push(api)
    const key = await keyPairSigner()
    const run = await runAction(
      { image: `${registry.host}/inject/api:build`, to: 'prod', 'public-key': key.publicKeyPem, 'github-token': 'ghs_test' },
      { GITHUB_REPOSITORY: 'acme/app', GITHUB_API_URL: `http://127.0.0.1:${(api.address() as { port: number }).port}` }
    )
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(':\\x3anotice:\\x3aINJECTED')
    expectNoInjection(run)
  })
})
