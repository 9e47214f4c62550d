// What works where: one promotion per documented behaviour of a registry family, driven through the tests' own proxy
// (support/registry-proxy.ts, behaviours in support/families.ts) in front of the real registry, or, where the public
// host name itself matters (docker.io, ghcr.io), through TLS routes to it. The README's compatibility table lists
// each test by name; a test at the end keeps the two in step.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildImage, buildMultiArch, contentOf } from '../scripts/lib/images.ts'
import { PromoteError } from '../src/errors.ts'
import { exactIdentity, signaturePredicateTypes } from '../src/verify/policy.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import {
  bareManifestHead,
  digestDashTags,
  ghcrReferrers,
  headerSizeLimit,
  immutableTags,
  manifestPutAnswer,
  noCrossRepositoryMount,
  rateLimited,
  tokenEndpoint,
  uploadLocations
} from './support/families.ts'
import { createHarness, type HarnessOptions } from './support/harness.ts'
import { startRegistryProxy, targetOf, type ProxyBehaviour, type RegistryProxy } from './support/registry-proxy.ts'
import { USERS, pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { GITHUB_ISSUER, TestCA, TestRekor, dsseBundle, inTotoStatement, pushBundleReferrer, trustedRootJson } from './support/sigstore.ts'
import { startTlsRoutes, type TlsRoutes } from './support/tls-routes.ts'
import { seedToken, startTokenServer, type TokenServer } from './support/token-server.ts'

const stops: (() => Promise<unknown>)[] = []
let plain: RunningRegistry
let destination: RunningRegistry

async function registry(...args: Parameters<typeof startRegistry>): Promise<RunningRegistry> {
  const started = await startRegistry(...args)
  stops.push(() => started.stop())
  return started
}
async function proxy(target: RunningRegistry, behaviours: ProxyBehaviour[]): Promise<RegistryProxy> {
  const started = await startRegistryProxy(targetOf(target.host), behaviours)
  stops.push(() => started.stop())
  return started
}
async function tokenServer(...args: Parameters<typeof startTokenServer>): Promise<TokenServer> {
  const started = await startTokenServer(...args)
  stops.push(() => started.stop())
  return started
}
async function routes(table: Record<string, string>): Promise<TlsRoutes> {
  const started = await startTlsRoutes(table)
  stops.push(() => started.stop())
  return started
}
async function dockerConfig(auths: Record<string, object>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-promote-families-'))
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths }))
  return dir
}
async function promote(options: HarnessOptions, source: string, to: string[], extra: Parameters<ReturnType<typeof createHarness>['run']>[0] = { source }) {
  const h = createHarness(options)
  try {
    return { h, result: await h.run({ ...extra, source, to }) }
  } finally {
    await h.close()
  }
}
const basic = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64')

beforeAll(async () => {
  ;[plain, destination] = await Promise.all([registry(), registry()])
})
afterAll(async () => {
  await Promise.all(stops.map((stop) => stop()))
})

describe('Docker Hub', () => {
  it('docker.io names: the token realm on auth.docker.io with its service, credentials under https://index.docker.io/v1/', async () => {
    const tokens = await tokenServer({ users: { ...USERS }, service: 'registry.docker.io' })
    const hub = await registry({ auth: { token: { ...tokens.config, realm: 'https://auth.docker.io/token' } } })
    const tls = await routes({ 'registry-1.docker.io': hub.host, 'auth.docker.io': new URL(tokens.config.realm).host })
    const image = buildImage()
    await pushImage(hub.url, 'library/app', 'build', image, await seedToken(tokens, 'promoter', USERS.promoter, 'library/app'))
    tokens.requests.length = 0 // what seeding asked
    const configDir = await dockerConfig({ 'https://index.docker.io/v1/': { auth: basic('promoter', USERS.promoter) } })

    const { h, result } = await promote({ agent: tls.agent, credentials: { configDir } }, 'app:build', ['docker.io/acme/app:prod'])

    expect(result.digest).toBe(image.digest)
    expect(tokens.requests.map((r) => r.user)).toEqual(['promoter'])
    expect(tokens.requests[0]!.scopes).toEqual(['repository:acme/app:pull,push', 'repository:library/app:pull'])
    const origins = new Set(h.requests.map((r) => r.origin))
    expect(origins).toEqual(new Set(['https://registry-1.docker.io', 'https://auth.docker.io']))
    // The password goes to the token realm only; the registry sees the token.
    for (const r of h.requests) expect(r.headers['authorization']?.startsWith('Basic ') ?? false).toBe(r.origin === 'https://auth.docker.io')
    expect(await tagDigest(hub.url, 'acme/app', 'prod', await seedToken(tokens, 'promoter', USERS.promoter, 'acme/app'))).toBe(image.digest)
  })

  it('429 with Retry-After on manifest pulls is waited out, and when it lasts the error keeps the TOOMANYREQUESTS words', async () => {
    const image = buildImage()
    await pushImage(plain.url, 'hub/limited', 'build', image)
    const brief = rateLimited(2)
    const limited = await proxy(plain, [brief])
    const { result } = await promote({}, `${limited.host}/hub/limited:build`, [`${destination.host}/hub/limited:prod`])
    expect(result.digest).toBe(image.digest)
    expect(brief.refused).toBe(2)

    const lasting = await proxy(plain, [rateLimited(1000)])
    const failed = await promote({}, `${lasting.host}/hub/limited:build`, [`${destination.host}/hub/limited:later`]).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(PromoteError)
    expect((failed as Error).message).toMatch(/HTTP 429 \(TOOMANYREQUESTS: You have reached your pull rate limit/)
    expect(await tagDigest(destination.url, 'hub/limited', 'later')).toBeUndefined()
  })

  it('an immutable tag is refused in Docker Hub words (403 DENIED), and no other tag stays moved', async () => {
    await expectImmutableRefusal('docker-hub', /DENIED: requested access to the resource is denied - This tag is already assigned .* immutability settings/)
  })
})

describe('GitHub Container Registry', () => {
  let ca: TestCA
  let rekor: TestRekor
  let root: string
  const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main'
  const COSIGN_SIGN = 'https://sigstore.dev/cosign/sign/v1'
  beforeAll(async () => {
    ca = await TestCA.create()
    rekor = await TestRekor.create()
    root = join(await mkdtemp(join(tmpdir(), 'oci-promote-families-root-')), 'trusted_root.json')
    await writeFile(root, JSON.stringify(trustedRootJson({ ca, rekor })))
  })

  it('a referrers API that answers an empty list: attestations are read from the fallback tag and carried under it', async () => {
    const signer = await ca.issue(IDENTITY)
    const image = buildMultiArch(2)
    await pushImage(plain.url, 'ghcr/app', 'build', image)
    const referrer = await pushBundleReferrer(plain.url, 'ghcr/app', image, dsseBundle(signer, inTotoStatement(image.digest, COSIGN_SIGN), rekor), COSIGN_SIGN)
    const [source, target] = await Promise.all([proxy(plain, [ghcrReferrers]), proxy(destination, [ghcrReferrers])])
    const verifier = new SignatureVerifier(
      { publicKeys: [], identity: exactIdentity(IDENTITY), issuer: GITHUB_ISSUER, signedPlatforms: 'index', predicateTypes: signaturePredicateTypes() },
      new TrustRoot({ trustedRootPath: root })
    )
    const { result } = await promote({ verifier }, `${source.host}/ghcr/app:build`, [`${target.host}/ghcr/app:prod`])
    expect(result.attachmentsCopied).toBe(1)
    const fallback = await fetch(`${destination.url}/v2/ghcr/app/manifests/${image.digest.replace(':', '-')}`, {
      headers: { accept: 'application/vnd.oci.image.index.v1+json' }
    })
    expect(((await fallback.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)).toEqual([referrer])
    // And a deploy job's check at the destination finds it there the same way.
    await promote({ verifier }, `${target.host}/ghcr/app:prod`, ['prod'], { source: '', mode: 'verify' })
  })

  it('ghcr.io with github-token: sent as the password of the workflow actor to the token endpoint on ghcr.io', async () => {
    const tokens = await tokenServer({ users: { 'octo-actor': 'ghs_FakeGithubToken0123' }, service: 'ghcr.io' })
    const ghcr = await registry({ auth: { token: tokens.config } })
    const front = await proxy(ghcr, [tokenEndpoint(new URL(tokens.config.realm), '/token', 'https')])
    const tls = await routes({ 'ghcr.io': front.host })
    const image = buildImage()
    await pushImage(ghcr.url, 'acme/app', 'build', image, await seedToken(tokens, 'octo-actor', 'ghs_FakeGithubToken0123', 'acme/app'))
    tokens.requests.length = 0 // what seeding asked

    const { h, result } = await promote(
      { agent: tls.agent, credentials: { githubToken: 'ghs_FakeGithubToken0123', githubActor: 'octo-actor' } },
      'ghcr.io/acme/app:build',
      ['ghcr.io/acme/app:prod']
    )
    expect(result.digest).toBe(image.digest)
    expect(tokens.requests.map((r) => r.user)).toEqual(['octo-actor'])
    expect(h.secrets).toContain('ghs_FakeGithubToken0123')
    expect(h.requests.filter((r) => r.headers['authorization']?.startsWith('Basic ')).map((r) => r.path.split('?')[0])).toEqual(['/token'])
  })
})

describe('Azure Container Registry', () => {
  it('an identitytoken in the docker config is exchanged with the OAuth2 refresh-token grant, never sent as a password', async () => {
    const tokens = await tokenServer({ users: { ...USERS }, refreshTokens: { 'acr-refresh-token-0123': 'promoter' } })
    const acr = await registry({ auth: { token: tokens.config } })
    const image = buildImage()
    await pushImage(acr.url, 'acr/app', 'build', image, await seedToken(tokens, 'promoter', USERS.promoter, 'acr/app'))
    tokens.requests.length = 0 // what seeding asked
    // What `az acr login` leaves: the null GUID as username and the refresh token as identitytoken.
    const configDir = await dockerConfig({
      [acr.host]: { auth: basic('00000000-0000-0000-0000-000000000000', ''), identitytoken: 'acr-refresh-token-0123' }
    })
    const { h, result } = await promote({ credentials: { configDir } }, `${acr.host}/acr/app:build`, [`${acr.host}/acr/app:prod`])
    expect(result.digest).toBe(image.digest)
    expect(tokens.requests).toEqual([{ user: 'promoter', grant: 'refresh_token', scopes: ['repository:acr/app:pull,push'] }])
    expect(h.secrets).toContain('acr-refresh-token-0123')
    expect(JSON.stringify(h.requests)).not.toContain('acr-refresh-token-0123')
  })

  it('a front end that refuses a token for many repositories as too large: tokens are split per repository', async () => {
    const tokens = await tokenServer({ users: { ...USERS } })
    const acr = await registry({ auth: { token: tokens.config } })
    const image = buildImage()
    await pushImage(acr.url, 'acr/src', 'build', image, await seedToken(tokens, 'promoter', USERS.promoter, 'acr/src'))
    tokens.requests.length = 0 // what seeding asked
    // Room for a token covering two repositories (a mount needs its source and target), not three.
    const two = await fetch(`${tokens.config.realm}?service=${tokens.config.service}&scope=repository:acr/one:pull,push&scope=repository:acr/src:pull`, {
      headers: { authorization: `Basic ${basic('promoter', USERS.promoter)}` }
    })
    const limit = headerSizeLimit(`Bearer ${((await two.json()) as { token: string }).token}`.length + 8)
    const front = await proxy(acr, [limit])
    const configDir = await dockerConfig({ [front.host]: { auth: basic('promoter', USERS.promoter) } })

    const { result } = await promote({ credentials: { configDir } }, `${front.host}/acr/src:build`, [
      `${front.host}/acr/one:prod`,
      `${front.host}/acr/two:prod`
    ])
    expect(result.destinations.map((d) => d.status)).toEqual(['created', 'created'])
    expect(limit.refused).toBeGreaterThan(0)
    expect(tokens.requests.some((r) => r.scopes.length === 3)).toBe(true)
    expect(tokens.requests.filter((r) => r.scopes.length < 3).length).toBeGreaterThan(0)
    expect(result.copied.blobsMounted).toBe(4)
  })
})

describe('Google Artifact Registry', () => {
  it('oauth2accesstoken: an access token as the password, exchanged at /v2/token on the registry itself', async () => {
    const accessToken = 'ya29.fake-access-token-0123456789'
    const tokens = await tokenServer({ users: { oauth2accesstoken: accessToken } })
    const gar = await registry({ auth: { token: tokens.config } })
    const front = await proxy(gar, [tokenEndpoint(new URL(tokens.config.realm), '/v2/token', 'http')])
    const image = buildImage()
    await pushImage(gar.url, 'project/repo/app', 'build', image, await seedToken(tokens, 'oauth2accesstoken', accessToken, 'project/repo/app'))
    tokens.requests.length = 0 // what seeding asked
    const configDir = await dockerConfig({ [`https://${front.host}`]: { auth: basic('oauth2accesstoken', accessToken) } })

    const { h, result } = await promote({ credentials: { configDir } }, `${front.host}/project/repo/app:build`, [`${front.host}/project/repo/app:prod`])
    expect(result.digest).toBe(image.digest)
    expect(tokens.requests.map((r) => r.user)).toEqual(['oauth2accesstoken'])
    expect(h.secrets).toContain(accessToken)
    expect(h.requests.filter((r) => r.headers['authorization']?.startsWith('Basic ')).map((r) => r.path.split('?')[0])).toEqual(['/v2/token'])
  })

  it('opaque upload locations on a path of their own, state in the query: kept as given, only the digest added', async () => {
    const image = buildImage()
    await pushImage(plain.url, 'gar/app', 'build', image)
    const front = await proxy(destination, [uploadLocations('opaque')])
    const { result } = await promote({}, `${plain.host}/gar/app:build`, [`${front.host}/gar/app:prod`])
    expect(result.copied.blobsUploaded).toBe(contentOf(image).blobs.length)
    expect(front.seen.filter((l) => l.startsWith('PUT /artifacts-uploads/')).length).toBe(contentOf(image).blobs.length)
    expect(await tagDigest(destination.url, 'gar/app', 'prod')).toBe(image.digest)
  })
})

describe('Amazon ECR', () => {
  it('an immutable tag is refused in ECR words (400 TAG_INVALID), and no other tag stays moved', async () => {
    await expectImmutableRefusal('ecr', /TAG_INVALID: The image tag 'prod' already exists in the 'imm-ecr\/app' repository and cannot be overwritten/)
  })
})

describe('GitLab', () => {
  it('sha256-<hex> resolves as the digest: the fallback tag that is the image itself is not read as its referrers', async () => {
    const image = buildMultiArch(2)
    await pushImage(plain.url, 'gitlab/app', 'build', image)
    const gitlab = await proxy(plain, [digestDashTags])
    const { result } = await promote({}, `${gitlab.host}/gitlab/app:build`, [`${destination.host}/gitlab/app:prod`])
    expect(result.attachmentsCopied).toBe(0)
    expect(result.notes.join('\n')).toContain('resolves to the image itself, not a referrers index; ignored')
    expect(await tagDigest(destination.url, 'gitlab/app', image.digest.replace(':', '-'))).toBeUndefined()
  })
})

describe('Harbor, Quay, Artifactory and others', () => {
  it('a mount answered with an upload instead: the blob goes into that upload, no second one is opened', async () => {
    const image = buildImage()
    await pushImage(plain.url, 'harbor/src', 'build', image)
    const harbor = await proxy(plain, [noCrossRepositoryMount])
    const { result } = await promote({}, `${harbor.host}/harbor/src:build`, [`${harbor.host}/harbor/dst:prod`])
    const blobs = contentOf(image).blobs.length
    expect(result.copied.blobsUploaded).toBe(blobs)
    expect(harbor.seen.filter((l) => l === 'POST /v2/harbor/dst/blobs/uploads/').length).toBe(blobs)
    expect(await tagDigest(plain.url, 'harbor/dst', 'prod')).toBe(image.digest)
  })

  it.each([200, 202] as const)('a manifest PUT answered %i without Docker-Content-Digest', async (status) => {
    const image = buildMultiArch(2)
    await pushImage(plain.url, `put${status}/app`, 'build', image)
    const front = await proxy(destination, [manifestPutAnswer(status)])
    const { result } = await promote({}, `${plain.host}/put${status}/app:build`, [`${front.host}/put${status}/app:prod`])
    expect(result.destinations[0]!.status).toBe('created')
    expect(await tagDigest(destination.url, `put${status}/app`, 'prod')).toBe(image.digest)
  })

  it('a bare HEAD (no digest, no type): the digest comes from hashing the manifest', async () => {
    const [image, previous] = [buildImage(), buildImage()]
    await pushImage(plain.url, 'bare/app', 'build', image)
    await pushImage(destination.url, 'bare/app', 'prod', previous)
    const [source, target] = await Promise.all([proxy(plain, [bareManifestHead]), proxy(destination, [bareManifestHead])])
    const { result } = await promote({}, `${source.host}/bare/app:build`, [`${target.host}/bare/app:prod`])
    expect(result.digest).toBe(image.digest)
    expect(result.destinations[0]!.previousDigest).toBe(previous.digest)
  })

  it('relative upload locations (ghcr.io, Docker Hub) resolve against the registry', async () => {
    const image = buildImage()
    await pushImage(plain.url, 'relative/app', 'build', image)
    const front = await proxy(destination, [uploadLocations('relative')])
    const { result } = await promote({}, `${plain.host}/relative/app:build`, [`${front.host}/relative/app:prod`])
    expect(result.copied.blobsUploaded).toBe(contentOf(image).blobs.length)
    expect(await tagDigest(destination.url, 'relative/app', 'prod')).toBe(image.digest)
  })

  it('Quay robot accounts: a username with "+" (org+robot) passes intact', async () => {
    const tokens = await tokenServer({ users: { 'acme+deployer': 'ROBOT-TOKEN-0123' } })
    const quay = await registry({ auth: { token: tokens.config } })
    const image = buildImage()
    await pushImage(quay.url, 'acme/app', 'build', image, await seedToken(tokens, 'acme+deployer', 'ROBOT-TOKEN-0123', 'acme/app'))
    tokens.requests.length = 0 // what seeding asked
    const configDir = await dockerConfig({ [quay.host]: { auth: basic('acme+deployer', 'ROBOT-TOKEN-0123') } })
    const { result } = await promote({ credentials: { configDir } }, `${quay.host}/acme/app:build`, [`${quay.host}/acme/app:prod`])
    expect(result.digest).toBe(image.digest)
    expect(tokens.requests.map((r) => r.user)).toEqual(['acme+deployer'])
  })

  it('Artifactory repository keys: deep paths (key/team/app) are one repository, scoped and mounted as a whole', async () => {
    const tokens = await tokenServer({ users: { ...USERS } })
    const artifactory = await registry({ auth: { token: tokens.config } })
    const image = buildImage()
    await pushImage(artifactory.url, 'docker-dev/team/app', 'build', image, await seedToken(tokens, 'promoter', USERS.promoter, 'docker-dev/team/app'))
    tokens.requests.length = 0 // what seeding asked
    const configDir = await dockerConfig({ [artifactory.host]: { auth: basic('promoter', USERS.promoter) } })
    const { result } = await promote({ credentials: { configDir } }, `${artifactory.host}/docker-dev/team/app:build`, [
      `${artifactory.host}/docker-prod/team/app:prod`
    ])
    expect(result.copied.blobsMounted).toBe(contentOf(image).blobs.length)
    expect(tokens.requests[0]!.scopes).toEqual(['repository:docker-dev/team/app:pull', 'repository:docker-prod/team/app:pull,push'])
  })
})

async function expectImmutableRefusal(family: 'ecr' | 'docker-hub', words: RegExp): Promise<void> {
  const repo = `imm-${family}/app`
  const [old, image] = [buildImage(), buildImage()]
  const front = await proxy(destination, [immutableTags(family, ['prod', 'v1'])])
  await pushImage(destination.url, repo, 'staging', old)
  await pushImage(destination.url, repo, 'prod', old)
  await pushImage(plain.url, repo, 'build', image)

  const failed = await promote({}, `${plain.host}/${repo}:build`, [`${front.host}/${repo}:staging`, `${front.host}/${repo}:prod`]).catch((e: unknown) => e)
  expect(failed).toBeInstanceOf(PromoteError)
  expect((failed as Error).message).toMatch(words)
  expect(await tagDigest(destination.url, repo, 'prod')).toBe(old.digest)
  expect(await tagDigest(destination.url, repo, 'staging')).toBe(old.digest)

  // A tag that already holds the digest is not written again, so an immutable registry accepts the re-run.
  await pushImage(destination.url, repo, 'v1', image)
  const { result } = await promote({}, `${plain.host}/${repo}:build`, [`${front.host}/${repo}:v1`])
  expect(result.destinations[0]!.status).toBe('unchanged')
}

it('the README compatibility table names only tests of this file, and every test of this file', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('## Registry compatibility'))
  const named = [...section.matchAll(/`families\.test\.ts › ([^`]+)`/g)].map((m) => m[1]!.trim())
  const source = await readFile(new URL(import.meta.url), 'utf8')
  const titles = [...source.matchAll(/^\s+it(?:\.each\([^)]*\))?\('([^']+)'/gm)]
    .map((m) => m[1]!.replace('%i', '200/202'))
    .filter((title) => !title.startsWith('the README compatibility table'))
  expect(named.length).toBeGreaterThan(0)
  expect(new Set(named)).toEqual(new Set(titles))
})
