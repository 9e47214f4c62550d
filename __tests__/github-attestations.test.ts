// GitHub artifact attestations as GitHub's API serves them since 2026-07: `"bundle": null` and a `bundle_url` to
// pre-signed blob storage on another origin, snappy-compressed (application/x-snappy, block format), paginated with
// Link headers and `after` cursors. A local stand-in answers exactly that way; the storage origin refuses any request
// that carries an Authorization header, as a GitHub token must never reach it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import snappy from 'snappyjs'
import { buildImage, type Image } from '../scripts/lib/images.ts'
import { nextLink } from '../src/oci/transport.ts'
import { githubAttestations } from '../src/verify/github.ts'
import { exactIdentity, signaturePredicateTypes, type SignaturePolicy } from '../src/verify/policy.ts'
import { TrustRoot } from '../src/verify/trust.ts'
import { SignatureVerifier } from '../src/verify/verifier.ts'
import { createHarness } from './support/harness.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { GITHUB_ISSUER, TestCA, TestRekor, dsseBundle, inTotoStatement, trustedRootJson, type Signer } from './support/sigstore.ts'

const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main'
const SLSA = 'https://slsa.dev/provenance/v1'
const TOKEN = 'ghs_attestationtoken'

interface Seen {
  readonly url: string
  readonly authorization: string | undefined
}

/** A loopback server that records what it was asked and answers with `route`. */
async function serve(route: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization })
    route(req, res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, server }
}

let registry: RunningRegistry
let ca: TestCA
let rekor: TestRekor
let signer: Signer
let trustedRoot: string
let storage: Awaited<ReturnType<typeof serve>>
/** What the storage origin serves, by path: the body and its content type. */
const blobs = new Map<string, { body: Buffer; type: string }>()
let seq = 0

beforeAll(async () => {
  registry = await startRegistry()
  ca = await TestCA.create()
  rekor = await TestRekor.create()
  signer = await ca.issue(IDENTITY)
  trustedRoot = join(await mkdtemp(join(tmpdir(), 'oci-promote-gh-')), 'trusted_root.json')
  await writeFile(trustedRoot, JSON.stringify(trustedRootJson({ ca, rekor })))
  storage = await serve((req, res) => {
    // Pre-signed storage: a request with credentials is refused, as Azure Blob Storage does for a SAS URL.
    if (req.headers.authorization)
      return void res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>InvalidAuthenticationInfo</Code></Error>')
    const blob = blobs.get(new URL(req.url ?? '/', 'http://x').pathname)
    if (!blob) return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': blob.type, 'content-length': String(blob.body.length) }).end(blob.body)
  })
})
afterAll(async () => {
  await new Promise((r) => storage?.server.close(r))
  await registry?.stop()
})

/** Puts a body in blob storage and returns its pre-signed URL. */
function store(body: Buffer, type = 'application/x-snappy'): string {
  const path = `/attestations/${++seq}`
  blobs.set(path, { body, type })
  return `${storage.url}${path}?sv=2025-01-05&sig=presigned${seq}`
}

const compressed = (bundle: object): Buffer => Buffer.from(snappy.compress(Buffer.from(JSON.stringify(bundle))))

/** The GitHub API stand-in: `pages` of attestations for one digest, each page linking the next with an `after` cursor. */
async function githubApi(digest: string, pages: object[][], options: { nextOrigin?: string } = {}) {
  const api = await serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (decodeURIComponent(url.pathname) !== `/repos/acme/app/attestations/${digest}`)
      return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}')
    const page = Number(url.searchParams.get('after')?.replace('cursor', '') ?? '0')
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
    if (page + 1 < pages.length)
      headers['link'] = `<${options.nextOrigin ?? api.url}/repos/acme/app/attestations/${digest}?per_page=100&after=cursor${page + 1}>; rel="next"`
    res.writeHead(200, headers).end(JSON.stringify({ attestations: pages[page] }))
  })
  return api
}

let repos = 0
async function seed(): Promise<{ image: Image; repo: string }> {
  const image = buildImage()
  const repo = `gh/app${++repos}`
  await pushImage(registry.url, repo, 'build', image)
  return { image, repo }
}

async function promoteWith(repo: string, apiUrl: string) {
  const policy: SignaturePolicy = {
    publicKeys: [],
    identity: exactIdentity(IDENTITY),
    issuer: GITHUB_ISSUER,
    attestationType: SLSA,
    predicateTypes: signaturePredicateTypes(SLSA),
    signedPlatforms: 'index'
  }
  const h = createHarness({
    verifier: new SignatureVerifier(policy, new TrustRoot({ trustedRootPath: trustedRoot })),
    externalEvidence: githubAttestations({ token: TOKEN, repository: 'acme/app', apiUrl })
  })
  try {
    return { result: await h.run({ source: `${registry.host}/${repo}:build`, to: ['prod'] }), promoted: await tagDigest(registry.url, repo, 'prod') }
  } catch (error) {
    return { error: error as Error & { code: string }, promoted: await tagDigest(registry.url, repo, 'prod') }
  } finally {
    await h.close()
  }
}

describe('GitHub artifact attestations as the API serves them now', () => {
  it('reads a snappy bundle from bundle_url, on the second page behind a hundred others, never sending the token there', async () => {
    const { image, repo } = await seed()
    const other = buildImage()
    const stranger = store(compressed(dsseBundle(signer, inTotoStatement(other.digest, SLSA), rekor)))
    const firstPage = Array.from({ length: 100 }, (_, i) => ({ bundle: null, repository_id: 1, bundle_url: stranger, initiator: 'ci', id: i }))
    const valid = {
      bundle: null,
      repository_id: 1,
      bundle_url: store(compressed(dsseBundle(signer, inTotoStatement(image.digest, SLSA), rekor))),
      initiator: 'ci'
    }
    const api = await githubApi(image.digest, [firstPage, [valid]])
    const before = storage.seen.length
    try {
      const { result, error, promoted } = await promoteWith(repo, api.url)
      expect(error).toBeUndefined()
      expect(result!.verified).toEqual([
        expect.objectContaining({ format: 'github-attestation', identity: IDENTITY, predicateType: SLSA, source: 'GitHub attestations of acme/app #101' })
      ])
      expect(promoted).toBe(image.digest)
      expect(api.seen.map((s) => [s.url.replace(/%3A/gi, ':'), s.authorization])).toEqual([
        [`/repos/acme/app/attestations/${image.digest}?per_page=100`, `token ${TOKEN}`],
        [`/repos/acme/app/attestations/${image.digest}?per_page=100&after=cursor1`, `token ${TOKEN}`]
      ])
      const fetched = storage.seen.slice(before)
      expect(fetched.length).toBeGreaterThanOrEqual(2)
      expect(fetched.every((s) => s.authorization === undefined)).toBe(true)
    } finally {
      await new Promise((r) => api.server.close(r))
    }
  })

  it('still reads an inline bundle, as the API answered before', async () => {
    const { image, repo } = await seed()
    const api = await githubApi(image.digest, [[{ bundle: dsseBundle(signer, inTotoStatement(image.digest, SLSA), rekor), repository_id: 1 }]])
    try {
      const { result, error } = await promoteWith(repo, api.url)
      expect(error).toBeUndefined()
      expect(result!.verified).toEqual([expect.objectContaining({ format: 'github-attestation', identity: IDENTITY })])
    } finally {
      await new Promise((r) => api.server.close(r))
    }
  })

  it('refuses compressed bombs before allocating, a link-local bundle_url without a request, and a next page on another origin', async () => {
    const { image, repo } = await seed()
    // A snappy header declaring 2^31 - 1 bytes, then junk; and 17 MiB of zeros, which really expands past the bound.
    const declared = store(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x07]), Buffer.alloc(64, 1)]))
    const zeros = store(Buffer.from(snappy.compress(Buffer.alloc(17 * 1024 * 1024))))
    const notSnappy = store(Buffer.from('<html>not a bundle</html>'))
    const pages = [
      [
        { bundle: null, bundle_url: declared },
        { bundle: null, bundle_url: zeros },
        { bundle: null, bundle_url: notSnappy },
        { bundle: null, bundle_url: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' },
        { bundle: null, bundle_url: 'https://[fe80::1]/bundle' },
        { bundle: null }
      ],
      [{ bundle: dsseBundle(signer, inTotoStatement(image.digest, SLSA), rekor) }]
    ]
    const api = await githubApi(image.digest, pages, { nextOrigin: 'http://127.0.0.2:9' })
    try {
      const { error, promoted } = await promoteWith(repo, api.url)
      expect(error?.code).toBe('SIGNATURE_NOT_VERIFIED')
      expect(promoted).toBeUndefined()
      const lines = error!.message
      expect(lines).toMatch(
        /#1: its bundle at http:\/\/127\.0\.0\.1:\d+ cannot be read: the body at bundle_url is not a snappy block \(The uncompressed length of 2147483647 is too big, expect at most 16777216\)/
      )
      expect(lines).toMatch(/#2: .*The uncompressed length of 17825792 is too big/)
      expect(lines).toMatch(/#3: .*cannot be read/)
      expect(lines).toMatch(/#4: .* is not fetched: it is a link-local address/)
      expect(lines).toMatch(/#5: .* is not fetched: it is a link-local address/)
      expect(lines).toContain('#6: it has neither a bundle nor a bundle_url')
      expect(lines).toContain("the API's next page is on another origin (http://127.0.0.2:9); not followed with the token")
      expect(api.seen).toHaveLength(1)
    } finally {
      await new Promise((r) => api.server.close(r))
    }
  })
})

describe('Link headers', () => {
  it('finds the next page however GitHub orders its relations', () => {
    expect(nextLink('<https://api.github.com/x?after=b>; rel="next", <https://api.github.com/x?before=a>; rel="prev"')).toBe('https://api.github.com/x?after=b')
    expect(nextLink('<https://api.github.com/x?before=a>; rel="prev", <https://api.github.com/x?after=b>; rel=next')).toBe('https://api.github.com/x?after=b')
    expect(nextLink('<https://api.github.com/x?before=a>; rel="prev"')).toBeUndefined()
    expect(nextLink(undefined)).toBeUndefined()
  })
})
