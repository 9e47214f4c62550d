// Two promotions racing for one environment tag: the tag ends at one of the two
// digests, and each run reports truthfully what it saw.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { buildImage, buildMultiArch } from '../scripts/lib/images.ts'
import { PromoteError } from '../src/errors.ts'
import { createHarness } from './support/harness.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'

let source: RunningRegistry
let target: RunningRegistry

beforeAll(async () => {
  ;[source, target] = await Promise.all([startRegistry(), startRegistry()])
})
afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()])
})

it('20 races for the same tag end at a digest some run reported promoting, and no run lies', async () => {
  const summary = { bothSucceeded: 0, oneLost: 0 }
  for (let race = 0; race < 20; race++) {
    const a = buildImage()
    const b = race % 2 === 0 ? buildImage() : buildMultiArch(2)
    await pushImage(source.url, 'race/app', `a${race}`, a)
    await pushImage(source.url, 'race/app', `b${race}`, b)
    const to = race % 3 === 0 ? 'live' : `${target.host}/race/app:live`
    const runs = [a, b].map(async (image, i) => {
      const h = createHarness()
      try {
        const result = await h.run({ source: `${source.host}/race/app:${i === 0 ? 'a' : 'b'}${race}`, to: [to] })
        return { digest: image.digest, ok: true as const, reported: result.destinations[0]!.digest }
      } catch (error) {
        return { digest: image.digest, ok: false as const, error }
      } finally {
        await h.close()
      }
    })
    const outcomes = await Promise.all(runs)
    const final = to === 'live' ? await tagDigest(source.url, 'race/app', 'live') : await tagDigest(target.url, 'race/app', 'live')
    expect([a.digest, b.digest]).toContain(final)
    const winners = outcomes.filter((o) => o.ok)
    // The last writer reads back its own digest, so the final digest is always one a run reported.
    expect(winners.map((w) => w.digest)).toContain(final)
    for (const w of winners) if (w.ok) expect(w.reported).toBe(w.digest)
    for (const l of outcomes.filter((o) => !o.ok)) {
      expect(l.ok ? undefined : l.error).toBeInstanceOf(PromoteError)
      expect((l as { error: PromoteError }).error.code).toBe('READBACK_MISMATCH')
    }
    if (winners.length === 2) summary.bothSucceeded++
    else summary.oneLost++
  }
  process.stdout.write(`races: ${JSON.stringify(summary)}\n`)
})

it('a tag write whose answer was lost and whose retries were refused is put back too, since it landed', async () => {
  const { createServer, request } = await import('node:http')
  const previous = buildImage()
  const image = buildImage()
  await pushImage(target.url, 'lost/app', 'staging', previous)
  await pushImage(target.url, 'lost/app', 'prod', previous)
  await pushImage(target.url, 'lost/app', 'build', image)
  const [host, port] = target.host.split(':') as [string, string]
  // The first PUT of `staging` reaches the registry and its answer is lost; its two retries are refused with 429.
  let staging = 0
  const proxy = createServer((req, res) => {
    const n = req.method === 'PUT' && req.url?.endsWith('/manifests/staging') ? ++staging : 0
    if (n === 2 || n === 3) {
      req.resume()
      return void res.writeHead(429, { 'content-type': 'application/json' }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
    }
    const upstream = request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (n === 1) {
        answer.resume()
        return void answer.on('end', () => res.socket?.destroy())
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    req.pipe(upstream)
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  const via = `127.0.0.1:${(proxy.address() as { port: number }).port}`
  const h = createHarness()
  try {
    const error = (await h.run({ source: `${via}/lost/app:build`, to: ['prod', 'staging'] }).catch((e: unknown) => e)) as PromoteError
    expect(error).toBeInstanceOf(PromoteError)
    expect(error.message).toContain(`${via}/lost/app:staging back at ${previous.digest}`)
    expect(await tagDigest(target.url, 'lost/app', 'staging')).toBe(previous.digest)
    expect(await tagDigest(target.url, 'lost/app', 'prod')).toBe(previous.digest)
  } finally {
    await h.close()
    proxy.closeAllConnections()
    await new Promise((r) => proxy.close(r))
  }
})
