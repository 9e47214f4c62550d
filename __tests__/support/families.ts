// Registry families' documented deviations from what Distribution 2.8 does, each a behaviour of the tests' own proxy
// (registry-proxy.ts) in front of the real registry. Each says where the behaviour is documented or reported; the
// README's compatibility table lists them with the test that drives a promotion through it.
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { OCI_INDEX } from '../../src/oci/media-types.ts'
import { ociError, pathOf, type ProxyBehaviour } from './registry-proxy.ts'

const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/

/** Repository and reference of a manifest request, or undefined for any other request. */
function manifestRequest(req: IncomingMessage): { repository: string; reference: string } | undefined {
  const match = MANIFEST_PATH.exec(pathOf(req))
  return match ? { repository: match[1]!, reference: match[2]! } : undefined
}

function withoutHeaders(headers: IncomingMessage['headers'], ...names: string[]): IncomingMessage['headers'] {
  const copy = { ...headers }
  for (const name of names) delete copy[name]
  return copy
}

/**
 * ghcr.io: the referrers API answers 200 with an empty index and indexes nothing (sbomify/sbomify#1530, 2026), while
 * GitHub's attest actions write the `sha256-<hex>` fallback tag there (actions/attest-build-provenance#71). A PUT of
 * a manifest with a subject gets no OCI-Subject header (Distribution 2.8 sends none either).
 */
export const ghcrReferrers: ProxyBehaviour = {
  answer(req, res) {
    if (req.method !== 'GET' || !/\/referrers\/sha256:[a-f0-9]{64}$/.test(pathOf(req))) return false
    res.writeHead(200, { 'content-type': OCI_INDEX }).end(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }))
    return true
  }
}

/**
 * A registry that does not mount across repositories answers the mount POST with a new upload (202 and a
 * Location), as the distribution spec allows ("Mounting a blob from another repository"); Harbor refused
 * cross-project mounts this way (google/go-containerregistry#1393).
 */
export const noCrossRepositoryMount: ProxyBehaviour = {
  rewrite(req) {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'POST' && url.searchParams.has('mount')) req.url = url.pathname
  }
}

/**
 * A manifest PUT answered 200 or 202 instead of 201, without Docker-Content-Digest or Location: the
 * distribution spec has the registry answer 201, and clients such as go-containerregistry accept any 2xx
 * because registries in the wild do.
 */
export function manifestPutAnswer(status: 200 | 202): ProxyBehaviour {
  return {
    respond(req, answer) {
      if (req.method !== 'PUT' || !manifestRequest(req) || answer.status !== 201) return answer
      return { status, headers: withoutHeaders(answer.headers, 'docker-content-digest', 'location') }
    }
  }
}

/** A HEAD of a manifest answered with neither Docker-Content-Digest nor Content-Type: the client must hash a GET. */
export const bareManifestHead: ProxyBehaviour = {
  respond(req, answer) {
    if (req.method !== 'HEAD' || !manifestRequest(req)) return answer
    return { ...answer, headers: withoutHeaders(answer.headers, 'docker-content-digest', 'content-type') }
  }
}

/**
 * Upload Locations in the other forms the spec allows ("the Location header ... may be absolute or relative"):
 * Distribution answers with an absolute URL; ghcr.io and Docker Hub with a path; Google Artifact Registry with an
 * opaque path of its own (`/artifacts-uploads/...`) carrying state in its query, which the client must keep.
 */
export function uploadLocations(form: 'relative' | 'opaque'): ProxyBehaviour {
  const sessions = new Map<string, string>()
  return {
    rewrite(req) {
      const url = new URL(req.url ?? '/', 'http://x')
      const real = url.pathname.startsWith('/artifacts-uploads/') ? sessions.get(url.searchParams.get('upload') ?? '') : undefined
      if (!real) return
      // Back to the registry's own location, with whatever the client added (the digest of the final PUT).
      const target = new URL(real, 'http://x')
      for (const [key, value] of url.searchParams) if (key !== 'upload') target.searchParams.set(key, value)
      req.url = target.pathname + target.search
    },
    respond(req, answer) {
      const location = answer.headers.location
      if (!location || !pathOf(req).includes('/blobs/uploads/')) return answer
      const real = new URL(location, 'http://x')
      if (form === 'relative') return { ...answer, headers: { ...answer.headers, location: real.pathname + real.search } }
      const id = String(sessions.size + 1)
      sessions.set(id, real.pathname + real.search)
      return { ...answer, headers: { ...answer.headers, location: `/artifacts-uploads/namespaces/p/repositories/r/uploads?upload=${id}` } }
    }
  }
}

/**
 * Immutable tags: a PUT to one of `tags` (in `repository`, or any) is refused, in the words each family uses. Amazon ECR: 400 TAG_INVALID
 * (aws/containers-roadmap#878); Docker Hub: 403 DENIED "… cannot be updated due to immutability settings"
 * (docker/hub-feedback#2466). Both refuse only tags that exist; the tests seed them first.
 */
export function immutableTags(family: 'ecr' | 'docker-hub', tags: readonly string[], repository?: string): ProxyBehaviour {
  return {
    answer(req, res) {
      const m = manifestRequest(req)
      if (req.method !== 'PUT' || !m || !tags.includes(m.reference) || (repository !== undefined && m.repository !== repository)) return false
      if (family === 'ecr') {
        return ociError(
          res,
          400,
          'TAG_INVALID',
          `The image tag '${m.reference}' already exists in the '${m.repository}' repository and cannot be overwritten because the repository is immutable.`
        )
      }
      return ociError(
        res,
        403,
        'DENIED',
        'requested access to the resource is denied - This tag is already assigned to an image in this repository and cannot be updated due to immutability settings. To push this image, use a different tag.'
      )
    }
  }
}

/** GitLab's registry resolves `sha256-<hex>` as the digest `sha256:<hex>` (oras-project/oras#2148, oras-go#1396). */
export const digestDashTags: ProxyBehaviour = {
  rewrite(req) {
    const m = manifestRequest(req)
    if ((req.method === 'GET' || req.method === 'HEAD') && m && /^sha256-[a-f0-9]{64}$/.test(m.reference)) {
      req.url = `/v2/${m.repository}/manifests/${m.reference.replace('-', ':')}`
    }
  }
}

/**
 * Docker Hub's pull rate limit: the first `count` manifest GETs are refused with 429, Retry-After and its
 * TOOMANYREQUESTS body (https://docs.docker.com/docker-hub/usage/pulls/).
 */
export function rateLimited(count: number): ProxyBehaviour & { refused: number } {
  const behaviour = {
    refused: 0,
    answer(req: IncomingMessage, res: Parameters<NonNullable<ProxyBehaviour['answer']>>[1]): boolean {
      if (req.method !== 'GET' || !manifestRequest(req) || behaviour.refused >= count) return false
      behaviour.refused++
      return ociError(res, 429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading', {
        'retry-after': '1'
      })
    }
  }
  return behaviour
}

/**
 * Azure Container Registry's front end refuses a request whose headers are too large, with nginx's HTML page
 * "400 Request Header Or Cookie Too Large": a bearer token for many repositories grows past it
 * (regclient/regclient#797, project-zot/zot#2903).
 */
export function headerSizeLimit(maxAuthorizationBytes: number): ProxyBehaviour & { refused: number } {
  const behaviour = {
    refused: 0,
    answer(req: IncomingMessage, res: Parameters<NonNullable<ProxyBehaviour['answer']>>[1]): boolean {
      if ((req.headers.authorization ?? '').length <= maxAuthorizationBytes) return false
      behaviour.refused++
      res
        .writeHead(400, { 'content-type': 'text/html' })
        .end('<html><head><title>400 Request Header Or Cookie Too Large</title></head><body><center><h1>400 Bad Request</h1></center></body></html>')
      return true
    }
  }
  return behaviour
}

/**
 * A token endpoint on the registry's own host: Google Artifact Registry's challenge names
 * `https://<host>/v2/token` (oras-project/oras#157), ghcr.io's `https://ghcr.io/token`. The proxy answers `path`
 * by forwarding to the token server, and points the registry's challenge there.
 */
export function tokenEndpoint(tokenServer: URL, path: string, scheme: 'http' | 'https'): ProxyBehaviour {
  return {
    answer(req, res) {
      if (pathOf(req) !== path) return false
      const url = new URL(req.url ?? '/', tokenServer)
      url.pathname = tokenServer.pathname
      const upstream = httpRequest(url, { method: req.method, headers: withoutHeaders(req.headers, 'host') }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      upstream.on('error', () => res.socket?.destroy())
      req.pipe(upstream)
      return true
    },
    respond(req, answer) {
      const challenge = answer.headers['www-authenticate']
      if (typeof challenge !== 'string' || !challenge.startsWith('Bearer ')) return answer
      const moved = challenge.replace(/realm="[^"]*"/, `realm="${scheme}://${req.headers.host ?? ''}${path}"`)
      return { ...answer, headers: { ...answer.headers, 'www-authenticate': moved } }
    }
  }
}
