// Authentication against the real registry: htpasswd Basic, and Bearer tokens
// from a token server, with credentials read from a docker config file.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { buildImage } from '../scripts/lib/images.ts'
import { createHarness } from './support/harness.ts'
import { HTPASSWD, USERS, basicAuthorization, pushImage, startRegistry, tagDigest, writeDockerConfig, type RunningRegistry } from './support/registry.ts'
import { seedToken, startTokenServer, type TokenServer } from './support/token-server.ts'

let basic: RunningRegistry
let bearer: RunningRegistry
let open: RunningRegistry
let tokens: TokenServer

async function dockerConfig(auths: Record<string, { user: string; password: string }>): Promise<string> {
  return writeDockerConfig(Object.fromEntries(Object.entries(auths).map(([host, { user, password }]) => [host, `${user}:${password}`])))
}

beforeAll(async () => {
  tokens = await startTokenServer({ users: { ...USERS }, readOnly: ['reader'] })
  ;[basic, bearer, open] = await Promise.all([
    startRegistry({ auth: { htpasswd: HTPASSWD } }),
    startRegistry({ auth: { token: tokens.config } }),
    startRegistry()
  ])
})
afterAll(async () => {
  await Promise.all([basic?.stop(), bearer?.stop(), open?.stop()])
  await tokens?.stop()
})

describe('Basic auth (htpasswd)', () => {
  it('promotes with credentials from the docker config and reports the secret for masking', async () => {
    const image = buildImage()
    await pushImage(basic.url, 'basic/app', 'build', image, basicAuthorization('promoter'))
    const configDir = await dockerConfig({ [`http://${basic.host}`]: { user: 'promoter', password: USERS.promoter } })
    const h = createHarness({ credentials: { configDir } })
    try {
      const result = await h.run({ source: `${basic.host}/basic/app:build`, to: ['prod', `${basic.host}/basic/other:prod`] })
      expect(result.destinations.map((d) => d.status)).toEqual(['created', 'created'])
      expect(result.copied.blobsMounted).toBe(2)
      expect(await tagDigest(basic.url, 'basic/other', 'prod', basicAuthorization('promoter'))).toBe(image.digest)
      expect(h.secrets).toContain(USERS.promoter)
      // Credentials travel only to the registry that owns them.
      expect(h.requests.filter((r) => r.headers['authorization']).every((r) => r.origin === basic.url)).toBe(true)
    } finally {
      await h.close()
    }
  })

  it('fails with a clear message, naming the user but not the password, when the password is wrong', async () => {
    const configDir = await dockerConfig({ [basic.host]: { user: 'promoter', password: 'wrong-password' } })
    const h = createHarness({ credentials: { configDir } })
    try {
      const error = (await h.run({ source: `${basic.host}/basic/app:build`, to: ['x'] }).catch((e: unknown) => e)) as Error & { code: string }
      expect(error.code).toBe('UNAUTHORIZED')
      expect(error.message).toContain('user "promoter"')
      expect(error.message).toContain('Check that the credentials are valid')
      expect(error.message).not.toContain('wrong-password')
      expect(h.writes()).toEqual([])
    } finally {
      await h.close()
    }
  })

  it('tells the user to log in when there are no credentials at all', async () => {
    const h = createHarness()
    try {
      await expect(h.run({ source: `${basic.host}/basic/app:build`, to: ['x'] })).rejects.toThrow(
        new RegExp(`refused the request anonymously .*Log in to ${basic.host.replace('.', '\\.')}`)
      )
    } finally {
      await h.close()
    }
  })
})

describe('Bearer tokens', () => {
  it('exchanges credentials once for a token covering the source pull and destination push scopes', async () => {
    const image = buildImage()
    await pushImage(bearer.url, 'tok/src', 'build', image, await seedToken(tokens, 'promoter', USERS.promoter, 'tok/src'))
    tokens.requests.length = 0
    const configDir = await dockerConfig({ [bearer.host]: { user: 'promoter', password: USERS.promoter } })
    const h = createHarness({ credentials: { configDir } })
    try {
      const result = await h.run({ source: `${bearer.host}/tok/src:build`, to: [`${bearer.host}/tok/dst:prod`, `${open.host}/tok/copy:prod`] })
      expect(result.destinations.map((d) => d.status)).toEqual(['created', 'created'])
      expect(tokens.requests).toEqual([{ user: 'promoter', grant: 'get', scopes: ['repository:tok/dst:pull,push', 'repository:tok/src:pull'] }])
      expect(result.copied.blobsMounted).toBe(2)
      expect(h.secrets.length).toBeGreaterThanOrEqual(2)
      const token = await seedToken(tokens, 'promoter', USERS.promoter, 'tok/dst')
      expect(await tagDigest(bearer.url, 'tok/dst', 'prod', token)).toBe(image.digest)
      expect(await tagDigest(open.url, 'tok/copy', 'prod')).toBe(image.digest)
      // The token never leaves for the other registry.
      const toOpen = h.requests.filter((r) => r.origin === open.url)
      expect(toOpen.length).toBeGreaterThan(0)
      expect(toOpen.some((r) => r.headers['authorization'])).toBe(false)
    } finally {
      await h.close()
    }
  })

  it('refuses before any write when the token grants only pull', async () => {
    const configDir = await dockerConfig({ [bearer.host]: { user: 'reader', password: USERS.reader } })
    const h = createHarness({ credentials: { configDir } })
    try {
      const error = (await h
        .run({ source: `${bearer.host}/tok/src:build`, to: [`${open.host}/tok/fine:prod`, 'staging'] })
        .catch((e: unknown) => e)) as Error & { code: string }
      expect(error.code).toBe('DENIED')
      expect(error.message).toContain('grants user "reader" pull on tok/src, not push')
      expect(h.writes()).toEqual([])
      expect(await tagDigest(open.url, 'tok/fine', 'prod')).toBeUndefined()
    } finally {
      await h.close()
    }
  })

  it('reports bad credentials from the token server clearly', async () => {
    const configDir = await dockerConfig({ [bearer.host]: { user: 'promoter', password: 'nope-nope' } })
    const h = createHarness({ credentials: { configDir } })
    try {
      const error = (await h.run({ source: `${bearer.host}/tok/src:build`, to: ['x'] }).catch((e: unknown) => e)) as Error & { code: string }
      expect(error.code).toBe('UNAUTHORIZED')
      expect(error.message).toMatch(/token server .* refused the credentials \(HTTP 401\)/)
      expect(error.message).not.toContain('nope-nope')
    } finally {
      await h.close()
    }
  })
})
