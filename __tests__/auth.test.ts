import { describe, expect, it } from '@jest/globals'
import { checkRealm, grantedActions, parseChallenges } from '../src/oci/auth.ts'

describe('parseChallenges', () => {
  it('reads a Docker Hub style Bearer challenge with quoted, comma-bearing values', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' } }
    ])
  })

  it('reads several challenges and unquoted values', () => {
    expect(parseChallenges('Basic realm="x", Bearer realm=https://t/token, error=insufficient_scope')).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', error: 'insufficient_scope' } }
    ])
  })

  it('unescapes quoted pairs', () => {
    expect(parseChallenges('Bearer realm="a\\"b"')[0]!.params['realm']).toBe('a"b')
  })
})

describe('checkRealm', () => {
  const publicRegistry = new URL('https://registry.example.com')
  it.each([
    ['http://169.254.169.254/latest/meta-data', /link-local address/],
    ['https://169.254.169.254/token', /link-local address/],
    ['https://10.0.0.8/token', /private or link-local/],
    ['https://192.168.1.1/token', /private or link-local/],
    ['https://172.20.0.1/token', /private or link-local/],
    ['https://127.0.0.1/token', /private or link-local/],
    ['https://[fe80::1]/token', /link-local address/],
    ['http://auth.example.com/token', /plain-http token realm/],
    ['file:///etc/passwd', /scheme file:/],
    ['not a url', /not a URL/]
  ])('refuses %s for a public registry', (realm, why) => {
    expect(() => checkRealm(realm, publicRegistry)).toThrow(why)
  })

  it('accepts a public https realm, and a private realm for a registry that itself lives there', () => {
    expect(checkRealm('https://auth.example.com/token', publicRegistry).host).toBe('auth.example.com')
    expect(checkRealm('http://127.0.0.1:9000/token', new URL('http://127.0.0.1:5000')).port).toBe('9000')
    expect(checkRealm('https://10.1.2.3/token', new URL('https://10.1.2.4')).host).toBe('10.1.2.3')
  })

  it('refuses a link-local realm even for a registry on a private or loopback address', () => {
    expect(() => checkRealm('http://169.254.169.254/token', new URL('http://127.0.0.1:5000'))).toThrow(/link-local/)
    expect(() => checkRealm('https://169.254.169.254/token', new URL('https://10.0.0.5'))).toThrow(/link-local/)
  })
})

describe('grantedActions', () => {
  const jwt = (claims: object): string => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`
  it('reads the access claim of a Distribution token', () => {
    const token = jwt({
      access: [
        { type: 'repository', name: 'a/b', actions: ['pull'] },
        { type: 'repository', name: 'c', actions: ['pull', 'push'] }
      ]
    })
    expect(grantedActions(token, 'a/b')).toEqual(new Set(['pull']))
    expect(grantedActions(token, 'c')).toEqual(new Set(['pull', 'push']))
    expect(grantedActions(token, 'other')).toEqual(new Set())
  })
  it('knows nothing of opaque tokens', () => {
    expect(grantedActions('opaque-token', 'a')).toBeUndefined()
    expect(grantedActions(jwt({ sub: 'x' }), 'a')).toBeUndefined()
    expect(grantedActions('a.!!!.c', 'a')).toBeUndefined()
  })
})
