// A seeded, randomized run of promotions through a fault-injecting proxy in front
// of two real registries. Every run ends either with every destination at the
// new digest, or failed with a clear error and every destination where it was.
// FAULT_RUNS, FAULT_RATE and FAULT_SEED override the defaults (200, 0.3, 20261122).
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { buildImage } from '../scripts/lib/images.ts'
import { PromoteError } from '../src/errors.ts'
import { createHarness } from './support/harness.ts'
import { FAULTS, startFaultProxy, type FaultProxy } from './support/fault-proxy.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'

const RUNS = Number(process.env['FAULT_RUNS'] ?? 200)
const RATE = Number(process.env['FAULT_RATE'] ?? 0.3)
const SEED = Number(process.env['FAULT_SEED'] ?? 20261122)
// The production retry count with test-speed waits; a stall is cut off by the idle timeout.
const RETRY = { retries: 5, baseDelayMs: 2, factor: 2, maxDelayMs: 20 }
const IDLE_TIMEOUT_MS = 150

let source: RunningRegistry
let target: RunningRegistry
let sourceProxy: FaultProxy
let targetProxy: FaultProxy

const portOf = (r: RunningRegistry): number => Number(r.host.split(':')[1])

beforeAll(async () => {
  ;[source, target] = await Promise.all([startRegistry(), startRegistry()])
  sourceProxy = await startFaultProxy({ host: '127.0.0.1', port: portOf(source) }, { seed: SEED, rate: RATE, stallMs: 2_000 })
  targetProxy = await startFaultProxy({ host: '127.0.0.1', port: portOf(target) }, { seed: SEED + 1, rate: RATE, stallMs: 2_000 })
})
afterAll(async () => {
  await Promise.all([sourceProxy?.stop(), targetProxy?.stop()])
  await Promise.all([source?.stop(), target?.stop()])
})

it(`${RUNS} promotions at a ${RATE * 100}% fault rate end complete or untouched`, async () => {
  const initial = buildImage({ layerSizes: [2048] })
  await pushImage(source.url, 'faulty/app', 'staging', initial)
  await pushImage(target.url, 'faulty/app', 'prod', initial)

  const outcomes = { completed: 0, failedClean: 0, violations: [] as string[], errors: new Map<string, number>(), samples: [] as string[] }
  for (let run = 0; run < RUNS; run++) {
    const image = buildImage({ layerSizes: [2048, 1024] })
    await pushImage(source.url, 'faulty/app', `build-${run}`, image)
    const before = [await tagDigest(source.url, 'faulty/app', 'staging'), await tagDigest(target.url, 'faulty/app', 'prod')]
    const h = createHarness({ retry: RETRY, agent: { headersTimeout: IDLE_TIMEOUT_MS, bodyTimeout: IDLE_TIMEOUT_MS } })
    let error: unknown
    try {
      await h.run({ source: `${sourceProxy.host}/faulty/app:build-${run}`, to: ['staging', `${targetProxy.host}/faulty/app:prod`] })
    } catch (e) {
      error = e
    } finally {
      await h.close()
    }
    const after = [await tagDigest(source.url, 'faulty/app', 'staging'), await tagDigest(target.url, 'faulty/app', 'prod')]
    if (error === undefined) {
      outcomes.completed++
      if (after.some((d) => d !== image.digest)) outcomes.violations.push(`run ${run}: reported success but tags are ${after.join(', ')}`)
    } else {
      outcomes.failedClean++
      if (!(error instanceof PromoteError))
        outcomes.violations.push(`run ${run}: failed with a non-PromoteError: ${error instanceof Error ? error.stack : JSON.stringify(error)}`)
      else outcomes.errors.set(error.code, (outcomes.errors.get(error.code) ?? 0) + 1)
      if (outcomes.samples.length < 8) outcomes.samples.push((error as Error).message.slice(0, 160))
      if (after.some((d, i) => d !== before[i]))
        outcomes.violations.push(
          `run ${run}: failed (${(error as Error).message.slice(0, 200)}) but tags moved from ${before.join(', ')} to ${after.join(', ')}`
        )
    }
  }

  const injected = Object.fromEntries(FAULTS.map((f) => [f, sourceProxy.injected[f] + targetProxy.injected[f]]))
  const requests = sourceProxy.requests + targetProxy.requests
  const report = {
    seed: SEED,
    runs: RUNS,
    faultRate: RATE,
    requests,
    faultsInjected: Object.values(injected).reduce((a, b) => a + b, 0),
    injected,
    completedDespiteFaults: outcomes.completed,
    completionRate: outcomes.completed / RUNS,
    failedWithNoTagChanged: outcomes.failedClean,
    failureCodes: Object.fromEntries(outcomes.errors),
    violations: outcomes.violations.length,
    failureSamples: outcomes.samples
  }
  process.stdout.write(`fault run: ${JSON.stringify(report)}\n`)
  expect(outcomes.violations).toEqual([])
  expect(report.faultsInjected).toBeGreaterThan(RUNS)
  // The target: transient faults should not cost the promotion.
  expect(report.completionRate).toBeGreaterThanOrEqual(0.9)
}, 600_000)
