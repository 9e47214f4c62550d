// Docker config credentials, with a real credential helper program on PATH run through @actions/exec.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { DockerCredentials, configKeyRegistry } from '../src/oci/credentials.ts'

let dir: string
const originalPath = process.env['PATH']

async function config(value: object): Promise<string> {
  const configDir = await mkdtemp(join(dir, 'cfg-'))
  await writeFile(join(configDir, 'config.json'), JSON.stringify(value))
  return configDir
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oci-promote-creds-'))
  // A credential helper speaking the docker-credential-helpers protocol: host on stdin, JSON on stdout.
  const helper = join(dir, 'docker-credential-fixture')
  await writeFile(
    helper,
    `#!/bin/sh
read host
case "$host" in
  registry.example.com) echo '{"ServerURL":"registry.example.com","Username":"helper-user","Secret":"helper-secret"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"refresh-token"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"hub","Username":"hubuser","Secret":"hubsecret"}' ;;
  broken.example.com) echo 'helper exploded' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`
  )
  await chmod(helper, 0o755)
  process.env['PATH'] = `${dir}${delimiter}${originalPath}`
})
afterAll(() => {
  process.env['PATH'] = originalPath
})

describe('DockerCredentials', () => {
  it('normalises config keys to canonical registries', () => {
    expect(configKeyRegistry('https://index.docker.io/v1/')).toBe('docker.io')
    expect(configKeyRegistry('http://localhost:5000/v2/')).toBe('localhost:5000')
    expect(configKeyRegistry('GHCR.IO')).toBe('ghcr.io')
  })

  it('reads auths by exact host, never by substring', async () => {
    const secrets: string[] = []
    const credentials = new DockerCredentials({
      configDir: await config({
        auths: { 'ghcr.io': { auth: Buffer.from('me:pw:with:colons').toString('base64') }, 'evil-ghcr.io.example': { username: 'x', password: 'y' } }
      }),
      onSecret: (s) => secrets.push(s)
    })
    expect(await credentials.lookup('ghcr.io')).toEqual({ kind: 'basic', username: 'me', password: 'pw:with:colons' })
    expect(await credentials.lookup('ghcr.io.example')).toBeUndefined()
    expect(secrets).toContain('pw:with:colons')
  })

  it('runs credHelpers and credsStore programs, and maps <token> to an identity token', async () => {
    const credentials = new DockerCredentials({
      configDir: await config({ credsStore: 'fixture', credHelpers: { 'token.example.com': 'fixture' } })
    })
    expect(await credentials.lookup('registry.example.com')).toEqual({ kind: 'basic', username: 'helper-user', password: 'helper-secret' })
    expect(await credentials.lookup('token.example.com')).toEqual({ kind: 'identity-token', token: 'refresh-token' })
    expect(await credentials.lookup('docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hubsecret' })
    expect(await credentials.lookup('unknown.example.com')).toBeUndefined()
  })

  it('explains a failing or missing helper', async () => {
    const credentials = new DockerCredentials({
      configDir: await config({ credHelpers: { 'broken.example.com': 'fixture', 'gone.example.com': 'not-installed-anywhere' } })
    })
    await expect(credentials.lookup('broken.example.com')).rejects.toThrow(
      /docker-credential-fixture failed for broken.example.com \(exit 3\): helper exploded/
    )
    await expect(credentials.lookup('gone.example.com')).rejects.toThrow(/docker-credential-not-installed-anywhere could not be run/)
  })

  it('refuses a helper name that could be a path', async () => {
    const credentials = new DockerCredentials({ configDir: await config({ credHelpers: { 'x.example.com': '../../bin/sh' } }) })
    await expect(credentials.lookup('x.example.com')).rejects.toThrow(/not a valid helper name/)
  })

  it('falls back to github-token for ghcr.io only', async () => {
    const credentials = new DockerCredentials({ configDir: await config({}), githubToken: 'ghs_token', githubActor: 'octocat' })
    expect(await credentials.lookup('ghcr.io')).toEqual({ kind: 'basic', username: 'octocat', password: 'ghs_token' })
    expect(await credentials.lookup('quay.io')).toBeUndefined()
  })

  it('reports a config that is not JSON', async () => {
    const configDir = await mkdtemp(join(dir, 'bad-'))
    await writeFile(join(configDir, 'config.json'), '{ nope')
    await expect(new DockerCredentials({ configDir }).lookup('ghcr.io')).rejects.toThrow(/is not valid JSON/)
  })
})
