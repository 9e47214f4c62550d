// A stand-in for GitHub Packages' REST API for one container package, answering as GitHub documents
// (https://docs.github.com/en/rest/packages/packages): the owner's type at GET /users/{owner}; the package's versions
// page by page with a Link header, each with id, name (its digest), created_at, updated_at and metadata.container.tags;
// DELETE of a version by id, which, as on ghcr.io, deletes the manifest from the registry behind it.
import { createServer } from 'node:http'

export interface FakeVersion {
  readonly id: number
  readonly name: string
  readonly tags: string[]
  readonly updated_at: string
}

export interface FakeGithubPackages {
  readonly url: string
  readonly versions: FakeVersion[]
  /** `DELETE 12`, `GET page 2`: what was asked, in order. */
  readonly requests: string[]
  add(digest: string, tags: string[], updatedAt: string): void
  stop(): Promise<void>
}

export interface FakeGithubPackagesOptions {
  readonly owner: string
  readonly ownerType: 'Organization' | 'User'
  readonly packageName: string
  readonly token: string
  /** The registry and repository the package's manifests live in (deleted there when a version is). */
  readonly registryUrl: string
  readonly repository: string
  /** At most this many versions a page, whatever per_page asks: forces paging in a small test. */
  readonly pageSize: number
}

export async function startGithubPackages(options: FakeGithubPackagesOptions): Promise<FakeGithubPackages> {
  const versions: FakeVersion[] = []
  const requests: string[] = []
  let nextId = 1000
  const scope = options.ownerType === 'Organization' ? 'orgs' : 'users'
  const base = `/${scope}/${options.owner}/packages/container/${encodeURIComponent(options.packageName)}/versions`
  let url = ''
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void =>
    void res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body))

  const server = createServer((req, res) => {
    req.resume()
    const target = new URL(req.url ?? '/', 'http://x')
    const auth = req.headers.authorization ?? ''
    if (auth !== `token ${options.token}` && auth !== `Bearer ${options.token}`) return json(res, 401, { message: 'Bad credentials' })
    if (req.method === 'GET' && target.pathname === `/users/${options.owner}`) return json(res, 200, { login: options.owner, id: 1, type: options.ownerType })
    if (req.method === 'GET' && target.pathname === base) {
      const perPage = Math.min(Number(target.searchParams.get('per_page') ?? 30), options.pageSize)
      const page = Number(target.searchParams.get('page') ?? 1)
      requests.push(`GET page ${page}`)
      const slice = versions.slice((page - 1) * perPage, page * perPage)
      const more = page * perPage < versions.length
      const link = more ? { link: `<${url}${base}?per_page=${perPage}&state=active&page=${page + 1}>; rel="next"` } : {}
      return json(
        res,
        200,
        slice.map((v) => ({
          id: v.id,
          name: v.name,
          url: `${url}${base}/${v.id}`,
          package_html_url: `https://github.com/${options.owner}/packages/container/package/${options.packageName}`,
          created_at: v.updated_at,
          updated_at: v.updated_at,
          html_url: `https://github.com/${options.owner}/packages/container/${options.packageName}/${v.id}`,
          metadata: { package_type: 'container', container: { tags: v.tags } }
        })),
        link
      )
    }
    const deletion = req.method === 'DELETE' && target.pathname.startsWith(`${base}/`) ? Number(target.pathname.slice(base.length + 1)) : undefined
    if (deletion !== undefined) {
      requests.push(`DELETE ${deletion}`)
      const at = versions.findIndex((v) => v.id === deletion)
      if (at === -1) return json(res, 404, { message: 'Not Found' })
      const [gone] = versions.splice(at, 1)
      void fetch(`${options.registryUrl}/v2/${options.repository}/manifests/${gone!.name}`, { method: 'DELETE' }).then(
        () => void res.writeHead(204).end(),
        () => json(res, 500, { message: 'registry unreachable' })
      )
      return
    }
    json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    url,
    versions,
    requests,
    add(digest, tags, updatedAt) {
      versions.push({ id: nextId++, name: digest, tags, updated_at: updatedAt })
    },
    async stop() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
}
