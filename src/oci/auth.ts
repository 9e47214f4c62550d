import { PromoteError } from '../errors.js'
import { untrusted } from '../untrusted.js'
import type { Credential, CredentialSource } from './credentials.js'
import { isLinkLocal, isPrivateAddress } from './addresses.js'
import { headerValue, readLimited, redactUrl, type HttpResponse, type Transport } from './transport.js'

export interface Challenge {
  readonly scheme: string
  readonly params: Readonly<Record<string, string>>
}

const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024

// How a token server (or the proxy in front of it) refuses a request it finds too large: a long scope list.
const TOO_LARGE_STATUSES = new Set([400, 413, 414, 431])

/** The token server refused a token for many repositories at once; one per repository may still be granted. */
class ScopeListRefused extends Error {}

/** Parses a WWW-Authenticate value (RFC 9110 §11.6.1) into its challenges. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = []
  // A token alone starts a challenge; token=value or token="quoted, value" is a parameter of the last one.
  const item = /([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?/g
  for (const match of header.matchAll(item)) {
    const [, name, quoted, plain] = match
    const isParam = match[0].includes('=')
    if (!isParam) {
      challenges.push({ scheme: name!.toLowerCase(), params: {} })
    } else if (challenges.length > 0) {
      challenges[challenges.length - 1]!.params[name!.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (plain ?? '')
    }
  }
  return challenges
}

/** The actions a JWT bearer token's `access` claim grants on a repository; undefined when it is not such a token. */
export function grantedActions(token: string, repository: string): Set<string> | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as {
      access?: { type?: string; name?: string; actions?: string[] }[]
    }
    if (!Array.isArray(claims.access)) return undefined
    const actions = new Set<string>()
    for (const entry of claims.access) {
      if (entry.type === 'repository' && entry.name === repository) for (const a of entry.actions ?? []) actions.add(a)
    }
    return actions
  } catch {
    return undefined
  }
}

/**
 * A token realm is where credentials go, so it must not point somewhere the
 * registry itself does not live: a public registry naming a link-local or
 * private address is an SSRF attempt (go-containerregistry validateRealmURL).
 */
export function checkRealm(realm: string, registryUrl: URL): URL {
  let url: URL
  try {
    url = new URL(realm)
  } catch {
    throw new PromoteError('REALM_REFUSED', `${registryUrl.host} names token realm "${untrusted(realm)}", which is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new PromoteError('REALM_REFUSED', `${registryUrl.host} names a token realm with scheme ${untrusted(url.protocol)}`)
  }
  // Link-local is where cloud metadata services live: no registry has a reason to send credentials there.
  if (isLinkLocal(url.hostname) && !isLinkLocal(registryUrl.hostname)) {
    throw new PromoteError(
      'REALM_REFUSED',
      `${registryUrl.host} names token realm ${untrusted(redactUrl(url))}, a link-local address (where cloud metadata services live); refused`
    )
  }
  if (isPrivateAddress(url.hostname) && !isPrivateAddress(registryUrl.hostname)) {
    throw new PromoteError(
      'REALM_REFUSED',
      `${registryUrl.host} names token realm ${untrusted(redactUrl(url))}, a private or link-local address it does not live on; refused`
    )
  }
  if (url.protocol === 'http:' && registryUrl.protocol === 'https:') {
    throw new PromoteError(
      'REALM_REFUSED',
      `${registryUrl.host} is served over https but names a plain-http token realm ${untrusted(redactUrl(url))}; credentials would travel in clear`
    )
  }
  return url
}

/**
 * Authentication for one registry, as the Docker/OCI token handshake works:
 * a ping learns the challenge; Basic sends the credential with every request;
 * Bearer exchanges it for a token scoped to the repositories the run touches,
 * refreshed once on a 401 (expired token or a scope the registry asks for).
 * https://distribution.github.io/distribution/spec/auth/token/
 *
 * One token for every repository is one exchange, but its size grows with the
 * list: Azure Container Registry's front end refuses a request whose token is
 * too large ("Request Header Or Cookie Too Large", regclient#797, zot#2903), and
 * a token server may refuse the long list itself. Then tokens are split: one
 * per repository a request touches (two for a cross-repository mount).
 */
export class RegistryAuth {
  readonly #registry: string
  readonly #baseUrl: URL
  readonly #credentials: CredentialSource
  readonly #transport: Transport
  readonly #onSecret: (secret: string) => void
  readonly #scopes = new Map<string, Set<string>>()
  readonly #tokens = new Map<string, Promise<string>>()
  #challenge?: Promise<Challenge | null>
  #split = false

  constructor(options: { registry: string; baseUrl: URL; credentials: CredentialSource; transport: Transport; onSecret?: (secret: string) => void }) {
    this.#registry = options.registry
    this.#baseUrl = options.baseUrl
    this.#credentials = options.credentials
    this.#transport = options.transport
    this.#onSecret = options.onSecret ?? (() => {})
  }

  /** Declares up front what the run needs, so one token exchange covers it all. */
  addScope(repository: string, action: 'pull' | 'push'): void {
    let actions = this.#scopes.get(repository)
    if (!actions) this.#scopes.set(repository, (actions = new Set()))
    actions.add(action)
    if (action === 'push') actions.add('pull')
  }

  /** The scopes a token asks for: every declared repository, or, once split, only those the request touches. */
  #scopeList(repositories: readonly string[] | undefined): string[] {
    const wanted =
      this.#split && repositories ? repositories.map((r): [string, Set<string>] => [r, this.#scopes.get(r) ?? new Set(['pull'])]) : [...this.#scopes.entries()]
    return wanted.sort(([a], [b]) => a.localeCompare(b)).map(([repo, actions]) => `repository:${repo}:${[...actions].sort().join(',')}`)
  }

  /** Whether tokens are one for all repositories and can still be split into one per repository. */
  #canSplit(): boolean {
    return !this.#split && this.#scopes.size > 1
  }

  /**
   * Called when a request was refused for the size of its headers (HTTP 431, or an HTML 400 from the front end):
   * splits tokens per repository when that can make them smaller. Returns whether one more attempt can succeed.
   */
  headersRefused(sentBearer: boolean): boolean {
    if (!sentBearer || !this.#canSplit()) return false
    this.#split = true
    return true
  }

  #ping(): Promise<Challenge | null> {
    this.#challenge ??= this.#transport.exchange(
      () => ({ method: 'GET', url: new URL('/v2/', this.#baseUrl) }),
      async (res) => {
        await res.body.dump()
        if (res.status === 401) return this.#pickChallenge(res)
        if (res.status >= 200 && res.status < 300) return null
        if (res.status === 404) {
          throw new PromoteError('REGISTRY_ERROR', `${this.#registry} does not serve the registry API at /v2/ (HTTP 404); is it a registry?`)
        }
        throw new PromoteError('REGISTRY_ERROR', `${this.#registry} answered the API check GET /v2/ with HTTP ${res.status}`, { transient: res.status >= 500 })
      }
    )
    return this.#challenge
  }

  #pickChallenge(res: HttpResponse): Challenge {
    const header = headerValue(res.headers, 'www-authenticate')
    const challenges = header ? parseChallenges(header) : []
    const chosen = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic')
    if (!chosen) {
      throw new PromoteError(
        'UNAUTHORIZED',
        `${this.#registry} answered 401 without a Basic or Bearer challenge (WWW-Authenticate: ${header === undefined ? 'missing' : untrusted(header)})`
      )
    }
    if (chosen.scheme === 'bearer' && !chosen.params['realm']) {
      throw new PromoteError('UNAUTHORIZED', `${this.#registry} sent a Bearer challenge without a realm`)
    }
    return chosen
  }

  /** The Authorization header for a request touching `repositories`, or undefined for anonymous access. */
  async authorization(repositories?: readonly string[]): Promise<string | undefined> {
    const credential = await this.#credentials.lookup(this.#registry)
    if (credential?.kind === 'registry-token') return `Bearer ${credential.token}`
    const challenge = await this.#ping()
    if (!challenge) return undefined
    if (challenge.scheme === 'basic') {
      if (credential?.kind !== 'basic') return undefined
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
    }
    try {
      return `Bearer ${await this.#token(challenge, credential, repositories)}`
    } catch (error) {
      if (!(error instanceof ScopeListRefused)) throw error
      if (!repositories || !this.#canSplit()) {
        throw new PromoteError('UNAUTHORIZED', `${this.#registry}: ${error.message}, even for the repositories of one request`, { cause: error })
      }
      this.#split = true
      return `Bearer ${await this.#token(challenge, credential, repositories)}`
    }
  }

  /**
   * Called on a 401: learns any scope the registry asks for and drops the
   * token that failed. Returns whether one more attempt can succeed.
   */
  async refresh(res: HttpResponse): Promise<boolean> {
    const challenge = await this.#ping()
    const header = headerValue(res.headers, 'www-authenticate')
    const fresh = header ? parseChallenges(header).find((c) => c.scheme === 'bearer') : undefined
    for (const scope of (fresh?.params['scope'] ?? '').split(' ').filter(Boolean)) {
      const match = /^repository:(.+):([a-z,*]+)$/.exec(scope)
      if (!match) continue
      for (const action of match[2]!.split(',')) {
        if (action === 'pull' || action === 'push') this.addScope(match[1]!, action)
      }
    }
    if (challenge?.scheme !== 'bearer') {
      return false
    }
    this.#tokens.clear()
    return true
  }

  #token(challenge: Challenge, credential: Credential | undefined, repositories: readonly string[] | undefined): Promise<string> {
    const scopes = this.#scopeList(repositories)
    const key = scopes.join(' ')
    let token = this.#tokens.get(key)
    if (!token) {
      token = this.#fetchToken(challenge, credential, scopes)
      this.#tokens.set(key, token)
      token.catch(() => this.#tokens.delete(key))
    }
    return token
  }

  async #fetchToken(challenge: Challenge, credential: Credential | undefined, scopes: string[]): Promise<string> {
    const realm = checkRealm(challenge.params['realm']!, this.#baseUrl)
    const service = challenge.params['service']
    const token = await this.#transport.exchange(
      () => {
        if (credential?.kind === 'identity-token') {
          // OAuth2 refresh-token grant: https://distribution.github.io/distribution/spec/auth/oauth/
          const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.token, client_id: 'oci-promote' })
          if (service) form.set('service', service)
          if (scopes.length) form.set('scope', scopes.join(' '))
          return {
            method: 'POST' as const,
            url: realm,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: Buffer.from(form.toString())
          }
        }
        const url = new URL(realm)
        if (service) url.searchParams.set('service', service)
        for (const scope of scopes) url.searchParams.append('scope', scope)
        const headers: Record<string, string> = {}
        if (credential?.kind === 'basic') {
          headers['authorization'] = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
        }
        return { method: 'GET' as const, url, headers }
      },
      async (res) => {
        const body = await readLimited(res, MAX_TOKEN_RESPONSE_BYTES, `token response from ${untrusted(redactUrl(realm))}`)
        if (res.status === 401 || res.status === 403) {
          throw new PromoteError(
            'UNAUTHORIZED',
            `${this.#registry}: the token server ${untrusted(redactUrl(realm))} refused ${credential ? 'the credentials' : 'anonymous access'} (HTTP ${res.status}). ${credential ? 'Check the username and password or token' : 'Log in first (docker/login-action) or set github-token for ghcr.io'}`
          )
        }
        if (TOO_LARGE_STATUSES.has(res.status) && scopes.length > 1) {
          throw new ScopeListRefused(`the token server ${untrusted(redactUrl(realm))} refused a token for ${scopes.length} repositories (HTTP ${res.status})`)
        }
        if (res.status !== 200) {
          throw new PromoteError('REGISTRY_ERROR', `${this.#registry}: the token server ${untrusted(redactUrl(realm))} answered HTTP ${res.status}`, {
            transient: res.status >= 500
          })
        }
        let parsed: { token?: unknown; access_token?: unknown }
        try {
          parsed = JSON.parse(body.toString('utf8')) as typeof parsed
        } catch (error) {
          throw new PromoteError('UNAUTHORIZED', `${this.#registry}: the token server ${untrusted(redactUrl(realm))} answered something other than JSON`, {
            cause: error
          })
        }
        const value = typeof parsed.token === 'string' && parsed.token ? parsed.token : parsed.access_token
        if (typeof value !== 'string' || value === '') {
          throw new PromoteError('UNAUTHORIZED', `${this.#registry}: the token server's answer holds no token`)
        }
        return value
      }
    )
    this.#onSecret(token)
    return token
  }

  /**
   * Where the registry's tokens are JWTs listing what they grant (Distribution,
   * Docker Hub), a token that lacks `action` on `repository` is known to fail:
   * say so now, before anything is written. Opaque tokens and Basic auth tell
   * nothing, and the write itself will be the test.
   */
  async assertGranted(repository: string, action: 'pull' | 'push'): Promise<void> {
    const authorization = await this.authorization([repository])
    if (!authorization?.startsWith('Bearer ')) return
    const granted = grantedActions(authorization.slice('Bearer '.length), repository)
    if (granted && !granted.has(action) && !granted.has('*')) {
      const credential = await this.#credentials.lookup(this.#registry)
      const who = credential?.kind === 'basic' ? `user "${credential.username}"` : credential ? 'the configured token' : 'anonymous access'
      throw new PromoteError(
        'DENIED',
        `${this.#registry}: the token server grants ${who} ${granted.size ? untrusted([...granted].join(',')) : 'no access'} on ${repository}, not ${action}. Use credentials that may ${action} there`
      )
    }
  }

  /**
   * Says who was refused, and how to fix it, without naming the secret. `said` is the registry's own reason
   * ("HTTP 403 (DENIED: … cannot be updated due to immutability settings)", as Docker Hub refuses an immutable
   * tag), kept because a 403 is not always about permissions.
   */
  async describeRefusal(status: number, what: string, said = `HTTP ${status}`): Promise<PromoteError> {
    const credential = await this.#credentials.lookup(this.#registry)
    const who = credential
      ? `with the ${credential.kind === 'basic' ? `credentials of user "${credential.username}"` : 'configured token'}`
      : 'anonymously (no credentials found for it)'
    if (status === 401) {
      return new PromoteError(
        'UNAUTHORIZED',
        `${what}: ${this.#registry} refused the request ${who} (${said}). ${credential ? 'Check that the credentials are valid' : `Log in to ${this.#registry} before this step (docker/login-action)`}`
      )
    }
    return new PromoteError(
      'DENIED',
      `${what}: ${this.#registry} denied the request ${who} (${said}). Unless the registry's reason says otherwise, the identity lacks permission for this repository`
    )
  }
}
