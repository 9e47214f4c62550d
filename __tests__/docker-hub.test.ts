// Docker Hub's documented pull accounting, reproduced by a proxy in front of the real registry: a manifest GET is a
// pull, a HEAD is not. A promotion looks up what may not exist (cosign's .sig/.att/.sbom tags, the referrers fallback
// tag) with HEAD, counts the pulls it spent, and reports the rate limit the registry sent.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { buildImage } from '../scripts/lib/images.ts'
import { runAction } from '../scripts/lib/runner.ts'
import { startCountingProxy, type CountingProxy } from './support/counting-proxy.ts'
import { createHarness } from './support/harness.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'

let hubRegistry: RunningRegistry
let destination: RunningRegistry
let hub: CountingProxy

beforeAll(async () => {
  ;[hubRegistry, destination] = await Promise.all([startRegistry(), startRegistry()])
  const [host, port] = hubRegistry.host.split(':') as [string, string]
  hub = await startCountingProxy({ host, port: Number(port) })
})
afterAll(async () => {
  await hub?.stop()
  await Promise.all([hubRegistry?.stop(), destination?.stop()])
})

it('a promotion out of the hub spends one pull, the image, and looks up absent signature tags with HEAD', async () => {
  const image = buildImage()
  await pushImage(hubRegistry.url, 'lib/app', 'build', image)
  const h = createHarness()
  try {
    await h.run({ source: `${hub.host}/lib/app:build`, to: [`${destination.host}/lib/app:prod`] })
    const usage = h.stores.usage().find((u) => u.registry === hub.host)
    expect(hub.manifestGets()).toBe(1)
    const sigTag = image.digest.replace(':', '-')
    for (const tag of [`${sigTag}.sig`, `${sigTag}.att`, `${sigTag}.sbom`, sigTag]) expect(hub.seen).toContain(`HEAD /v2/lib/app/manifests/${tag}`)
    expect(usage).toEqual({ registry: hub.host, pulls: 1, rateLimitRemaining: '99;w=21600' })
  } finally {
    await h.close()
  }
  expect(await tagDigest(destination.url, 'lib/app', 'prod')).toBe(image.digest)
})

it('the log and the job summary say how many pulls each registry cost, and the rate limit it reported', async () => {
  const image = buildImage()
  await pushImage(hubRegistry.url, 'lib/summary', 'build', image)
  const run = await runAction({ image: `${hub.host}/lib/summary:build`, to: `${destination.host}/lib/summary:prod`, 'verify-signature': 'false' })
  expect(run.exitCode).toBe(0)
  expect(run.stdout).toMatch(new RegExp(`${hub.host}: 1 manifest pull \\(rate limit remaining: \\d+;w=21600\\)`))
  expect(run.summary).toMatch(new RegExp(`\\*\\*Registry pulls:\\*\\* .*${hub.host}: 1 manifest pull \\(rate limit remaining: \\d+;w=21600\\)`))
})
