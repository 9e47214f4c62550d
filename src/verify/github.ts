import { getOctokit } from '@actions/github'
import { errorMessage } from '../errors.js'
import { DEFAULT_API_URL } from '../github-api.js'
import { isLinkLocal, isPrivateAddress } from '../oci/addresses.js'
import { Agent, request } from '../oci/http.js'
import { isLoopbackHost } from '../oci/reference.js'
import { nextLink, readLimited } from '../oci/transport.js'
import { untrusted } from '../untrusted.js'
import { evidenceFromBundles, type Evidence, type EvidenceBatch } from './evidence.js'

export interface GithubAttestationSource {
  readonly token: string
  /** owner/repo whose attestations are read: the workflow's repository. */
  readonly repository: string
  readonly apiUrl?: string
}

const PER_PAGE = 100
/** At most this many pages (a thousand attestations) are read per digest; the rest are said to exist. */
const MAX_PAGES = 10
/** A bundle is a few KiB; the bound applies to the compressed body and, checked before allocating, to what it expands to. */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024
const BUNDLE_TIMEOUT_MS = 30_000

interface Attestation {
  bundle?: unknown
  bundle_url?: unknown
}

/**
 * Why a bundle_url is not fetched, or undefined. It is pre-signed storage on
 * another host, reached without any credential; it may not point where
 * GitHub's API itself could not be (metadata services, private networks), nor
 * travel in clear except on loopback.
 */
function refusedBundleUrl(url: URL, api: URL): string | undefined {
  if (isLinkLocal(url.hostname)) return 'it is a link-local address (where cloud metadata services live)'
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.host))) return `its scheme is ${url.protocol}; only https is fetched`
  if (isPrivateAddress(url.hostname) && !isPrivateAddress(api.hostname)) return 'it is a private address and the API is not'
  return undefined
}

/** Decompresses a snappy block (application/x-snappy), refusing before allocation anything larger than the bound. */
async function uncompressSnappy(compressed: Buffer): Promise<Buffer> {
  // CommonJS: bundled by esbuild, its exports are reliably on the default export.
  const snappy = (await import('snappyjs')) as typeof import('snappyjs') & { default?: typeof import('snappyjs') }
  return Buffer.from((snappy.default ?? snappy).uncompress(compressed, MAX_BUNDLE_BYTES))
}

/**
 * Fetches and decompresses one bundle_url. No Authorization header is ever
 * sent: the URL carries its own short-lived signature, and a GitHub token
 * must not reach another origin.
 */
async function fetchBundle(url: URL, dispatcher: Agent): Promise<unknown> {
  // reset: one request per connection, so no idle socket to storage holds the process open at exit.
  const res = await request(dispatcher, url, {
    method: 'GET',
    headers: { accept: 'application/x-snappy, application/json', 'user-agent': 'oci-promote' },
    signal: AbortSignal.timeout(BUNDLE_TIMEOUT_MS),
    reset: true
  })
  if (res.statusCode !== 200) {
    res.body.destroy()
    throw new Error(`bundle_url answered HTTP ${res.statusCode}`)
  }
  const body = await readLimited(res, MAX_BUNDLE_BYTES, 'the body at bundle_url')
  const type = String(res.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase()
  let json: Buffer
  try {
    json = type === 'application/json' ? body : await uncompressSnappy(body)
  } catch (error) {
    throw new Error(`the body at bundle_url is not a snappy block (${errorMessage(error)})`, { cause: error })
  }
  return JSON.parse(json.toString('utf8'))
}

/**
 * GitHub artifact attestations for a digest, as `gh attestation verify` reads
 * them: GET /repos/{owner}/{repo}/attestations/{subject_digest}, every page.
 * Since 2026-07 the API answers `"bundle": null` with a `bundle_url` to a
 * snappy-compressed copy in blob storage; an inline bundle is read as well.
 * Each attestation is read on demand and judged alone; a failing API or URL
 * becomes evidence with a problem, so it is reported and never trusted.
 */
export function githubAttestations(source: GithubAttestationSource): (subject: string) => Promise<EvidenceBatch[]> {
  const api = new URL(source.apiUrl ?? DEFAULT_API_URL)
  const octokit = getOctokit(source.token, source.apiUrl ? { baseUrl: source.apiUrl } : {})
  const [owner, repo] = source.repository.split('/')
  // Its own connection pool: nothing of the registry client's (credentials, proxy settings for registries) applies.
  const storage = new Agent({ connect: { timeout: BUNDLE_TIMEOUT_MS } })
  const label = `GitHub attestations of ${source.repository}`

  const problem = (subject: string, text: string, n?: number): EvidenceBatch => ({
    subject,
    bytes: 0,
    read: async () => [{ format: 'github-attestation', subject, source: n === undefined ? label : `${label} #${n}`, problem: text }]
  })

  function batch(subject: string, attestation: Attestation, n: number): EvidenceBatch {
    const base = { format: 'github-attestation' as const, subject, source: `${label} #${n}` }
    if (attestation.bundle !== null && attestation.bundle !== undefined) {
      return { subject, bytes: 0, read: async () => evidenceFromBundles('github-attestation', subject, base.source, [attestation.bundle]) }
    }
    if (typeof attestation.bundle_url !== 'string' || attestation.bundle_url === '') return problem(subject, 'it has neither a bundle nor a bundle_url', n)
    let url: URL
    try {
      url = new URL(attestation.bundle_url)
    } catch {
      return problem(subject, `its bundle_url "${untrusted(attestation.bundle_url)}" is not a URL`, n)
    }
    const refused = refusedBundleUrl(url, api)
    if (refused) return problem(subject, `its bundle_url ${untrusted(url.origin)} is not fetched: ${refused}`, n)
    // Unknown size until fetched: scheduled as a large batch, one at a time.
    return {
      subject,
      bytes: MAX_BUNDLE_BYTES,
      read: async (): Promise<Evidence[]> => {
        try {
          return evidenceFromBundles('github-attestation', subject, base.source, [await fetchBundle(url, storage)])
        } catch (error) {
          return [{ ...base, problem: `its bundle at ${untrusted(url.origin)} cannot be read: ${errorMessage(error)}` }]
        }
      }
    }
  }

  return async (subject) => {
    const batches: EvidenceBatch[] = []
    let next: string | undefined
    try {
      for (let page = 1; ; page++) {
        const response = next
          ? await octokit.request({ method: 'GET', url: next })
          : await octokit.request('GET /repos/{owner}/{repo}/attestations/{subject_digest}', {
              owner: owner!,
              repo: repo!,
              subject_digest: subject,
              per_page: PER_PAGE
            })
        const attestations = (response.data as { attestations?: unknown }).attestations
        if (!Array.isArray(attestations)) return [...batches, problem(subject, `the API answered page ${page} without an attestations list`)]
        for (const attestation of attestations) batches.push(batch(subject, (attestation ?? {}) as Attestation, batches.length + 1))
        const link = nextLink(response.headers.link)
        if (!link) break
        const url = new URL(link, api)
        // The Link header is the API's word; the token goes only to the API's own origin.
        if (url.origin !== api.origin)
          return [...batches, problem(subject, `the API's next page is on another origin (${untrusted(url.origin)}); not followed with the token`)]
        if (page === MAX_PAGES)
          return [...batches, problem(subject, `more than ${MAX_PAGES * PER_PAGE} attestations; only the first ${MAX_PAGES * PER_PAGE} were read`)]
        // @octokit/endpoint reads ":name" in a URL as a parameter to fill in; the digest's colon must stay a colon.
        url.pathname = url.pathname.replace(/:/g, '%3A')
        next = url.href
      }
      return batches
    } catch (error) {
      // No attestation at all is a 404 on the first page; on a later one it is a fault worth saying.
      if ((error as { status?: number }).status === 404 && !next) return batches
      return [...batches, problem(subject, `the API request failed: ${errorMessage(error)}`)]
    }
  }
}
