// A small Docker token server (https://distribution.github.io/distribution/spec/auth/token/)
// for the real registry's `auth: token` mode: it checks Basic credentials and
// issues RS256 JWTs whose x5c certificate the registry trusts through rootcertbundle.
import { execFileSync } from 'node:child_process'
import { createPrivateKey, createSign, randomBytes, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TokenAuthConfig } from './registry.ts'

export interface TokenRequest {
  readonly user: string | undefined
  readonly scopes: string[]
  /** GET with Basic credentials (or none), or the OAuth2 refresh-token grant POSTed as a form. */
  readonly grant: 'get' | 'refresh_token'
}

export interface TokenServer {
  readonly config: TokenAuthConfig
  readonly requests: TokenRequest[]
  /** Every token handed out, so tests can look for leaks. */
  readonly issued: string[]
  stop(): Promise<void>
}

export interface TokenServerOptions {
  /** user → password */
  readonly users: Record<string, string>
  /** Users granted only pull, whatever they ask for. */
  readonly readOnly?: readonly string[]
  /**
   * refresh token → user: the OAuth2 refresh-token grant, as Azure Container Registry's /oauth2/token takes the
   * identity token `docker login` stores (https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md) and answers
   * with `access_token`.
   */
  readonly refreshTokens?: Record<string, string>
  /** The `service` tokens are issued for (their audience); the registry's challenge names the same. */
  readonly service?: string
}

function b64url(value: Buffer | string): string {
  return Buffer.from(value).toString('base64url')
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-promote-token-'))
  const keyPath = join(dir, 'key.pem')
  const certPath = join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=oci-promote-test-token-issuer'],
    { stdio: 'ignore' }
  )
  const key = createPrivateKey(await readFile(keyPath))
  const certDer = new X509Certificate(await readFile(certPath)).raw
  const issuer = 'oci-promote-test-issuer'
  const service = options.service ?? 'oci-promote-test-registry'
  const requests: TokenRequest[] = []
  const issued: string[] = []

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => answer(req, Buffer.concat(chunks).toString('utf8'), res))
  })

  const answer = (req: IncomingMessage, formText: string, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const refusal = (grant: TokenRequest['grant'], user: string | undefined, scopes: string[]): void => {
      requests.push({ user, scopes, grant })
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid credentials"}')
    }
    let scopes: string[]
    let user: string | undefined
    const grant: TokenRequest['grant'] = req.method === 'POST' ? 'refresh_token' : 'get'
    if (grant === 'refresh_token') {
      const form = new URLSearchParams(formText)
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean)
      user = options.refreshTokens?.[form.get('refresh_token') ?? '']
      if (form.get('grant_type') !== 'refresh_token' || !user) return refusal(grant, undefined, scopes)
    } else {
      scopes = url.searchParams.getAll('scope')
      const header = req.headers.authorization
      if (header?.startsWith('Basic ')) {
        const [name, ...rest] = Buffer.from(header.slice(6), 'base64').toString().split(':')
        if (options.users[name!] !== rest.join(':')) return refusal(grant, name, scopes)
        user = name
      }
    }
    requests.push({ user, scopes, grant })
    const access = scopes.flatMap((scope) => {
      const match = /^repository:(.+):([a-z,]+)$/.exec(scope)
      if (!match || !user) return []
      const wanted = match[2]!.split(',')
      const actions = options.readOnly?.includes(user) ? wanted.filter((a) => a === 'pull') : wanted
      return [{ type: 'repository', name: match[1], actions }]
    })
    const now = Math.floor(Date.now() / 1000)
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }))
    const body = b64url(
      JSON.stringify({ iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access })
    )
    const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(key)
    const token = `${head}.${body}.${b64url(signature)}`
    issued.push(token)
    const answerBody = grant === 'refresh_token' ? { access_token: token } : { token, expires_in: 300 }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answerBody))
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    config: { realm: `http://127.0.0.1:${port}/token`, service, issuer, rootCertBundle: certPath },
    requests,
    issued,
    async stop() {
      await new Promise((r) => server.close(r))
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** A push token for seeding, fetched the way any client would. */
export async function seedToken(server: TokenServer, user: string, password: string, repository: string): Promise<string> {
  const url = new URL(server.config.realm)
  url.searchParams.set('service', server.config.service)
  url.searchParams.set('scope', `repository:${repository}:pull,push`)
  const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } })
  const { token } = (await res.json()) as { token: string }
  return `Bearer ${token}`
}
