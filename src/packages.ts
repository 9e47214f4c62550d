import { getOctokit } from '@actions/github'
import { PromoteError, errorMessage } from './errors.js'
import { DEFAULT_API_URL } from './github-api.js'
import { SHA256_DIGEST } from './oci/digest.js'
import { TAG_PATTERN } from './oci/reference.js'
import { nextLink } from './oci/transport.js'
import { untrusted } from './untrusted.js'

/**
 * A container package's versions as GitHub Packages keeps them: ghcr.io lists and deletes manifests through the
 * GitHub REST API, not the registry API. Each version is one manifest: `name` is its digest,
 * `metadata.container.tags` its tags, `updated_at` when it last changed; it is deleted by its `id`.
 * https://docs.github.com/en/rest/packages/packages
 */
export interface PackageVersion {
  readonly id: number
  readonly digest: string
  readonly tags: readonly string[]
  readonly updatedAt?: Date
}

export interface PackageVersions {
  /** `GitHub Packages acme/app`, for messages. */
  readonly name: string
  list(): Promise<PackageVersion[]>
  delete(version: PackageVersion): Promise<void>
}

export interface GithubPackagesOptions {
  readonly token: string
  readonly apiUrl?: string
  /** ghcr.io/<owner>/<package...>: the package of a repository `acme/app/sub` is `app/sub`, owned by `acme`. */
  readonly repository: string
}

const PER_PAGE = 100
const MAX_PAGES = 500

/** The versions of the container package behind a ghcr.io repository, for a user or an organisation owner. */
export function githubPackages(options: GithubPackagesOptions): PackageVersions {
  const api = new URL(options.apiUrl ?? DEFAULT_API_URL)
  const octokit = getOctokit(options.token, options.apiUrl ? { baseUrl: options.apiUrl } : {})
  const [owner, ...rest] = options.repository.split('/')
  const packageName = rest.join('/')
  const name = `GitHub Packages ${options.repository}`
  let scope: Promise<'orgs' | 'users'> | undefined
  // Owned by an organisation or a user: the two have their own endpoints.
  const ownerScope = (): Promise<'orgs' | 'users'> =>
    (scope ??= octokit
      .request('GET /users/{username}', { username: owner! })
      .then((r) => ((r.data as { type?: unknown }).type === 'Organization' ? 'orgs' : 'users')))
  const failed = (what: string, error: unknown): PromoteError => {
    const status = (error as { status?: number }).status
    const hint =
      status === 401 || status === 403
        ? ': the token needs packages: read to list and packages: delete (delete:packages) to delete, and access to the package'
        : status === 404
          ? `: no container package ${packageName} of ${owner} is visible to the token`
          : ''
    return new PromoteError(status === 403 || status === 401 ? 'DENIED' : 'REGISTRY_ERROR', `${name}: ${what}: ${untrusted(errorMessage(error))}${hint}`, {
      cause: error
    })
  }

  return {
    name,
    async list() {
      const versions: PackageVersion[] = []
      const owners = await ownerScope().catch((error: unknown) => {
        throw failed(`looking up ${owner}`, error)
      })
      let next: string | undefined
      for (let page = 1; ; page++) {
        let response
        try {
          response = next
            ? await octokit.request({ method: 'GET', url: next })
            : await octokit.request(`GET /${owners}/{owner}/packages/{package_type}/{package_name}/versions`, {
                owner: owner!,
                package_type: 'container',
                package_name: packageName,
                per_page: PER_PAGE,
                state: 'active'
              })
        } catch (error) {
          throw failed(`listing versions (page ${page})`, error)
        }
        if (!Array.isArray(response.data)) throw new PromoteError('REGISTRY_ERROR', `${name}: page ${page} of versions is not a list`)
        for (const raw of response.data as unknown[]) {
          // Judged one by one: a version that is not what the API documents is left alone, never deleted.
          const v = raw as { id?: unknown; name?: unknown; updated_at?: unknown; metadata?: { container?: { tags?: unknown } } }
          if (typeof v.id !== 'number' || typeof v.name !== 'string' || !SHA256_DIGEST.test(v.name)) continue
          const tags = Array.isArray(v.metadata?.container?.tags)
            ? v.metadata.container.tags.filter((t): t is string => typeof t === 'string' && TAG_PATTERN.test(t))
            : []
          const updated = typeof v.updated_at === 'string' ? new Date(v.updated_at) : undefined
          versions.push({ id: v.id, digest: v.name, tags, ...(updated && !Number.isNaN(updated.getTime()) ? { updatedAt: updated } : {}) })
        }
        const link = nextLink(response.headers.link)
        if (!link) return versions
        const url = new URL(link, api)
        // The token goes only to the API's own origin.
        if (url.origin !== api.origin)
          throw new PromoteError('REGISTRY_ERROR', `${name}: the next page is on another origin (${untrusted(url.origin)}); refused`)
        if (page === MAX_PAGES) throw new PromoteError('REGISTRY_ERROR', `${name}: more than ${MAX_PAGES * PER_PAGE} versions; refusing to read on`)
        next = url.href
      }
    },
    async delete(version) {
      const owners = await ownerScope()
      try {
        await octokit.request(`DELETE /${owners}/{owner}/packages/{package_type}/{package_name}/versions/{package_version_id}`, {
          owner: owner!,
          package_type: 'container',
          package_name: packageName,
          package_version_id: version.id
        })
      } catch (error) {
        if ((error as { status?: number }).status === 404) return
        throw failed(`deleting version ${version.id} (${version.digest})`, error)
      }
    }
  }
}
