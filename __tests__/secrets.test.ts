// No password, token or Authorization value appears in anything a run prints or
// writes (logs with debug on, outputs, job summary, errors), on success and on
// every failure path; each secret is handed to the runner's masking instead.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { buildImage } from '../scripts/lib/images.ts'
import { runAction, type ActionRun } from '../scripts/lib/runner.ts'
import { serveImage, startFakeServer, type FakeServer } from './support/fake-registry.ts'
import { HTPASSWD, USERS, basicAuthorization, pushImage, writeDockerConfig, startRegistry, type RunningRegistry } from './support/registry.ts'
import { seedToken, startTokenServer, type TokenServer } from './support/token-server.ts'

const GITHUB_TOKEN = 'ghs_0123456789abcdefSECRETgithubtoken'
const WRONG_PASSWORD = 'Wrong-Pa55-secret'
let basic: RunningRegistry
let bearer: RunningRegistry
let tokens: TokenServer
let fake: FakeServer
let storage: FakeServer
const runs: { name: string; run: ActionRun }[] = []
/** Tokens issued to the test's own seeding, before any run: the runs never saw them. */
let seedingTokens = 0

async function record(name: string, inputs: Record<string, string>, auths: Record<string, string>): Promise<ActionRun> {
  const run = await runAction(
    { 'verify-signature': 'false', 'github-token': GITHUB_TOKEN, ...inputs },
    { DOCKER_CONFIG: await writeDockerConfig(auths), RUNNER_DEBUG: '1' }
  )
  runs.push({ name, run })
  return run
}

beforeAll(async () => {
  tokens = await startTokenServer({ users: { ...USERS } })
  ;[basic, bearer] = await Promise.all([startRegistry({ auth: { htpasswd: HTPASSWD } }), startRegistry({ auth: { token: tokens.config } })])
  const image = buildImage()
  await pushImage(basic.url, 'sec/app', 'build', image, basicAuthorization('promoter'))
  await pushImage(bearer.url, 'sec/app', 'build', image, await seedToken(tokens, 'promoter', USERS.promoter, 'sec/app'))
  seedingTokens = tokens.issued.length
  storage = await startFakeServer((req, res) => {
    const blob = image.blobs.find((b) => req.url?.startsWith(`/s/${b.digest}`))
    if (!blob) return false
    res.writeHead(200, { 'content-length': String(blob.size) }).end(blob.bytes)
  })
  fake = await startFakeServer(
    serveImage(image, { repository: 'sec/app', tag: 'build', basic: `promoter:${USERS.promoter}`, blobRedirect: (d) => `${storage.url}/s/${d}?sig=1` })
  )

  const promoter = `promoter:${USERS.promoter}`
  await record('basic, success', { image: `${basic.host}/sec/app:build`, to: `prod\n${basic.host}/sec/copy:prod` }, { [basic.host]: promoter })
  await record(
    'bearer, success',
    { image: `${bearer.host}/sec/app:build`, to: `prod\n${bearer.host}/sec/copy:prod\n${basic.host}/sec/cross:prod` },
    { [bearer.host]: promoter, [basic.host]: promoter }
  )
  await record('basic, wrong password', { image: `${basic.host}/sec/app:build`, to: 'x' }, { [basic.host]: `promoter:${WRONG_PASSWORD}` })
  await record('bearer, wrong password', { image: `${bearer.host}/sec/app:build`, to: 'x' }, { [bearer.host]: `promoter:${WRONG_PASSWORD}` })
  await record(
    'cross-origin redirect',
    { image: `${fake.host}/sec/app:build`, to: `${basic.host}/sec/redirected:prod` },
    { [fake.host]: promoter, [basic.host]: promoter }
  )
  await record('missing image', { image: `${bearer.host}/sec/app:nope`, to: `${basic.host}/x/y:prod` }, { [bearer.host]: promoter, [basic.host]: promoter })
}, 120_000)
afterAll(async () => {
  await Promise.all([basic?.stop(), bearer?.stop(), fake?.stop(), storage?.stop()])
  await tokens?.stop()
})

function secrets(): string[] {
  const pairs = [`promoter:${USERS.promoter}`, `promoter:${WRONG_PASSWORD}`]
  return [USERS.promoter, WRONG_PASSWORD, GITHUB_TOKEN, ...pairs.map((p) => Buffer.from(p).toString('base64')), ...tokens.issued]
}

it('the scenarios ran as intended: three promotions succeeded, three failed', () => {
  expect(runs.map((r) => [r.name, r.run.exitCode])).toEqual([
    ['basic, success', 0],
    ['bearer, success', 0],
    ['basic, wrong password', 1],
    ['bearer, wrong password', 1],
    ['cross-origin redirect', 0],
    ['missing image', 1]
  ])
  expect(tokens.issued.length).toBeGreaterThan(0)
  expect(storage.seen.length).toBeGreaterThan(0)
})

it('no secret appears in logs (debug on), outputs, summaries or errors', () => {
  const leaks: string[] = []
  for (const { name, run } of runs) {
    const lines = [
      ...run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')),
      ...run.stderr.split('\n'),
      ...run.summary.split('\n'),
      ...Object.values(run.outputs)
    ]
    for (const secret of secrets()) for (const line of lines) if (line.includes(secret)) leaks.push(`${name}: ${secret.slice(0, 6)}… in ${line.slice(0, 120)}`)
    expect(run.stdout).toContain('::debug::')
  }
  expect(leaks).toEqual([])
})

it('every secret a run used was handed to the runner for masking', () => {
  const masked = new Set(
    runs.flatMap(({ run }) =>
      run.stdout
        .split('\n')
        .filter((l) => l.startsWith('::add-mask::'))
        .map((l) => l.slice('::add-mask::'.length))
    )
  )
  const used = [USERS.promoter, WRONG_PASSWORD, GITHUB_TOKEN, ...tokens.issued.slice(seedingTokens)]
  expect(used.filter((secret) => !masked.has(secret)).map((s) => `${s.slice(0, 8)}…`)).toEqual([])
})

it('credentials never reached another origin', () => {
  expect(storage.seen.every((r) => r.authorization === undefined)).toBe(true)
})
