// npm run bench: oci-promote (the bundled dist/index.js, whole process, cold
// start included) against `skopeo copy --preserve-digests` and a raw curl
// baseline (the same bytes moved with plain HTTP requests: the physical limit),
// on two local Distribution registries, with images built here. Copies start
// from a cold destination: a fresh registry that holds none of the blobs.
// BENCH_RUNS sets the runs per copy scenario (default 3) and BENCH_SMALL_RUNS those of the
// scenarios that move no bytes (default 9: they last tens of milliseconds, where scheduling
// noise is large); the table shows medians.
import { spawnSync } from 'node:child_process'
import { cpus, totalmem, tmpdir } from 'node:os'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { baseLayer, buildImage, buildMultiArch, contentOf, type Image } from '../scripts/lib/images.ts'
import { exitedChildrenCpuMs, runAction, runProcess, type ProcessRun } from '../scripts/lib/runner.ts'
import { startBodyCapProxy } from '../__tests__/support/body-cap-proxy.ts'
import { startRegistryProxy, targetOf } from '../__tests__/support/registry-proxy.ts'
import { pushImage, startRegistry, type RunningRegistry } from '../__tests__/support/registry.ts'

const RUNS = Number(process.env['BENCH_RUNS'] ?? 3)
const SMALL_RUNS = Number(process.env['BENCH_SMALL_RUNS'] ?? 9)
const MiB = 1024 * 1024

function requireTools(): void {
  const missing = ['docker-registry', 'skopeo', 'curl', 'sha256sum'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
  if (missing.length === 0) return
  const packages = missing.map((t) => (t === 'sha256sum' ? 'coreutils' : t))
  if (process.getuid?.() === 0) {
    console.log(`installing ${packages.join(' ')} from the distribution's packages`)
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
    const installed = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    })
    if (installed.status === 0) return
  }
  console.error(`The benchmark needs ${missing.join(', ')}: sudo apt-get install ${packages.join(' ')}`)
  process.exit(2)
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

function check(run: ProcessRun, what: string): ProcessRun {
  if (run.exitCode !== 0) throw new Error(`${what} failed (exit ${run.exitCode}):\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`)
  return run
}

/**
 * One run of the action as a workflow runs it: debug output off. `listRequests` turns it on for a run whose requests
 * a row lists (a line per request; a few lines cost nothing measurable, a release's hundreds cost ~40 ms of CPU).
 */
async function promote(inputs: Record<string, string>, listRequests = false): Promise<ProcessRun & { requests: string[] }> {
  const run = check(
    await runAction({ 'verify-signature': 'false', 'show-summary': 'false', ...inputs }, listRequests ? { RUNNER_DEBUG: '1' } : {}),
    `oci-promote ${JSON.stringify(inputs)}`
  )
  const requests = run.stdout.split('\n').filter((l) => /^::debug::(GET|HEAD|PUT|POST|PATCH|DELETE) /.test(l))
  return { ...run, requests }
}

/** `GET ×5, PUT ×3`: the requests a run sent, by method. */
function requestSummary(requests: readonly string[]): string {
  const byMethod = new Map<string, number>()
  for (const line of requests) {
    const method = line.slice('::debug::'.length).split(' ')[0]!
    byMethod.set(method, (byMethod.get(method) ?? 0) + 1)
  }
  return `${requests.length} requests (${[...byMethod].map(([m, n]) => `${m} ×${n}`).join(', ')})`
}

/** What no run can go below: Node starting and exiting with nothing to do, and the bundle loading with no inputs. */
async function startupFloor(): Promise<{ node: number; load: number }> {
  const node: number[] = []
  const load: number[] = []
  for (let i = 0; i < SMALL_RUNS; i++) {
    node.push(check(await runProcess(process.execPath, ['-e', '0']), 'node -e 0').ms)
    // No inputs: the action loads, reads its inputs, fails on the first one and exits before any request.
    const bare = await runAction({})
    if (!bare.stdout.includes('::error::INPUT_INVALID: input "image"'))
      throw new Error(`dist/index.js without inputs did not fail on its first input:\n${bare.stdout}`)
    load.push(bare.ms)
  }
  return { node: median(node), load: median(load) }
}

async function skopeo(source: string, destination: string): Promise<ProcessRun> {
  return check(
    await runProcess('skopeo', [
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${source}`,
      `docker://${destination}`
    ]),
    `skopeo ${source} → ${destination}`
  )
}

/** The physical limit: every blob piped from one registry to the other by curl, in parallel, then the manifests. */
async function raw(from: RunningRegistry, repository: string, image: Image, to: RunningRegistry, tag: string): Promise<ProcessRun> {
  const { blobs, manifests } = contentOf(image)
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`
  const blobScript = blobs
    .map(
      (b) =>
        `( loc=$(curl -sfi -X POST ${quote(`${to.url}/v2/${repository}/blobs/uploads/`)} | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p'); case "$loc" in http*) ;; *) loc="${to.url}$loc";; esac; curl -sf ${quote(`${from.url}/v2/${repository}/blobs/${b.digest}`)} | curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T - "$loc&digest=${b.digest}" ) &`
    )
    .join('\n')
  const manifestScript = manifests
    .map(
      (m) =>
        `curl -sf ${quote(`${from.url}/v2/${repository}/manifests/${m.digest}`)} -H 'Accept: ${m.mediaType}' | curl -sf -X PUT -H 'Content-Type: ${m.mediaType}' --data-binary @- ${quote(`${to.url}/v2/${repository}/manifests/${m === image ? tag : m.digest}`)}`
    )
    .join('\n')
  return check(await runProcess('sh', ['-ec', `${blobScript}\nwait\n${manifestScript}`]), 'raw curl copy')
}

interface Row {
  scenario: string
  promote: number
  skopeo?: number
  raw?: number
  ratio: string
  target: string
  met: boolean
  note?: string
  /** The target in milliseconds, where it is a time. */
  targetMs?: number
}
const rows: Row[] = []
const cpuNotes: string[] = []

/** CPU time spent during a stretch of the benchmark: by the processes it ran (exited since), and by the registries. */
interface CpuSpent {
  readonly client: number
  readonly registries: number
}

const cpuMedian = (spent: readonly CpuSpent[], who: keyof CpuSpent): number => median(spent.map((c) => c[who]))

/** Starts counting CPU; the function it returns says what was spent since. */
function cpuMeter(registries: readonly RunningRegistry[]): () => CpuSpent {
  const client = exitedChildrenCpuMs()
  const served = registries.reduce((sum, r) => sum + r.cpuMs(), 0)
  return () => ({ client: exitedChildrenCpuMs() - client, registries: registries.reduce((sum, r) => sum + r.cpuMs(), 0) - served })
}
const memory: string[] = []
const scaling: string[] = []

/**
 * A release: `count` services built together, 2 base layers of 4 MiB shared by all and 2 MiB of each one's own
 * (~10 MiB an image), pushed to the source as rel<N>/svc<i>:build.
 */
async function seedRelease(source: RunningRegistry, prefix: string, count: number): Promise<string[]> {
  const base = [baseLayer(4 * MiB), baseLayer(4 * MiB)]
  const repos = Array.from({ length: count }, (_, i) => `${prefix}/svc${i + 1}`)
  for (const repo of repos) await pushImage(source.url, repo, 'build', buildImage({ baseLayers: base, layerSizes: [2 * MiB], uncompressed: true }))
  return repos
}

/** Runs `tasks` at most `width` at a time. */
async function pool<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++
        results[i] = await tasks[i]!()
      }
    })
  )
  return results
}

/** Requests a run sends to both registries, counted by a proxy in front of each (a run of its own, not timed). */
async function countRequests(source: RunningRegistry, use: (sourceHost: string, target: string) => Promise<unknown>): Promise<number> {
  return withFreshRegistry(async (target) => {
    const [s, t] = await Promise.all([startRegistryProxy(targetOf(source.host), []), startRegistryProxy(targetOf(target.host), [])])
    try {
      await use(s.host, t.host)
      return s.seen.length + t.seen.length
    } finally {
      await Promise.all([s.stop(), t.stop()])
    }
  })
}

async function releaseScenario(source: RunningRegistry): Promise<void> {
  const repos = await seedRelease(source, 'rel20', 20)
  const document = (sourceHost: string, target: string): string =>
    JSON.stringify(repos.map((repo) => ({ image: `${sourceHost}/${repo}:build`, to: [`${target}/${repo}:staging`] })))
  const copies = (sourceHost: string, target: string): (() => Promise<ProcessRun>)[] =>
    repos.map((repo) => () => skopeo(`${sourceHost}/${repo}:build`, `${target}/${repo}:staging`))
  const runs = { promote: [] as ProcessRun[], unsigned: [] as number[], sequential: [] as number[], parallel: [] as number[] }
  const cpu = { promote: [] as CpuSpent[], sequential: [] as CpuSpent[], parallel: [] as CpuSpent[] }
  for (let i = 0; i < RUNS; i++) {
    await withFreshRegistry(async (target) => {
      const meter = cpuMeter([source, target])
      runs.promote.push(await promote({ release: document(source.host, target.host) }))
      cpu.promote.push(meter())
    })
    // skopeo carries no signatures: the same release with copy-signatures off does exactly the work skopeo does.
    await withFreshRegistry(async (target) => {
      runs.unsigned.push((await promote({ release: document(source.host, target.host), 'copy-signatures': 'false' })).ms)
    })
    await withFreshRegistry(async (target) => {
      const meter = cpuMeter([source, target])
      const started = performance.now()
      await pool(copies(source.host, target.host), 1)
      runs.sequential.push(performance.now() - started)
      cpu.sequential.push(meter())
    })
    await withFreshRegistry(async (target) => {
      const meter = cpuMeter([source, target])
      const started = performance.now()
      await pool(copies(source.host, target.host), 8)
      runs.parallel.push(performance.now() - started)
      cpu.parallel.push(meter())
    })
  }
  const ours = median(runs.promote.map((r) => r.ms))
  const sequential = median(runs.sequential)
  const parallel = median(runs.parallel)
  const requests = {
    promote: await countRequests(source, (s, t) => promote({ release: document(s, t) })),
    sequential: await countRequests(source, (s, t) => pool(copies(s, t), 1))
  }
  const rss = Math.max(...runs.promote.map((r) => r.peakRssKiB)) / 1024
  rows.push({
    scenario: 'release of 20 images (2 shared base layers, ~10 MiB each), cold registry',
    promote: ours,
    skopeo: sequential,
    ratio: `${(ours / sequential).toFixed(2)} × skopeo loop, ${(ours / parallel).toFixed(2)} × skopeo 8 at a time (${parallel.toFixed(0)} ms)`,
    target: '≤ 0.2 × loop, ≤ 0.6 × 8 at a time, requests ≤ skopeo, < 200 MiB',
    met: ours <= 0.2 * sequential && ours <= 0.6 * parallel && requests.promote <= requests.sequential && rss < 200,
    note:
      `${requests.promote} registry requests against ${requests.sequential} for the skopeo loop; peak RSS ${rss.toFixed(0)} MiB; ` +
      `with copy-signatures off (skopeo's work: no lookups for signatures to carry) ${median(runs.unsigned).toFixed(0)} ms, ` +
      `${(median(runs.unsigned) / sequential).toFixed(2)} × loop, ${(median(runs.unsigned) / parallel).toFixed(2)} × 8 at a time`
  })
  // On a machine this small the run is bound by CPU, its own and the registries' serving it: no run can take less
  // than the CPU it and they spend divided by the cores, however well it overlaps its requests.
  const spent = (what: CpuSpent[]): CpuSpent => ({ client: cpuMedian(what, 'client'), registries: cpuMedian(what, 'registries') })
  const [ourCpu, loopCpu, parallelCpu] = [spent(cpu.promote), spent(cpu.sequential), spent(cpu.parallel)]
  const floor = (ourCpu.client + ourCpu.registries) / cpus().length
  cpuNotes.push(
    `release of 20 images: CPU per run (medians) — oci-promote ${ourCpu.client} ms + registries ${ourCpu.registries} ms; ` +
      `skopeo loop ${loopCpu.client} ms + registries ${loopCpu.registries} ms; skopeo 8 at a time ${parallelCpu.client} ms + registries ${parallelCpu.registries} ms. ` +
      `On ${cpus().length} cores no oci-promote run can take less than ${floor.toFixed(0)} ms (${(floor / sequential).toFixed(2)} × the loop, ${(floor / parallel).toFixed(2)} × 8 at a time); ` +
      `the registries' CPU alone puts any client doing this work, however little CPU of its own it spent, at ${(ourCpu.registries / cpus().length).toFixed(0)} ms or more ` +
      `(${(ourCpu.registries / cpus().length / sequential).toFixed(2)} × the loop).`
  )
  // How time grows with the release: nearly flat while concurrency has room, then linear.
  for (const count of [5, 20, 80]) {
    const scaled = count === 20 ? repos : await seedRelease(source, `rel${count}`, count)
    const times: number[] = []
    for (let i = 0; i < RUNS; i++) {
      await withFreshRegistry(async (target) => {
        const doc = JSON.stringify(scaled.map((repo) => ({ image: `${source.host}/${repo}:build`, to: [`${target.host}/${repo}:staging`] })))
        times.push((await promote({ release: doc })).ms)
      })
    }
    scaling.push(`| ${count} | ${median(times).toFixed(0)} ms | ${(median(times) / count).toFixed(0)} ms |`)
  }
}

async function withFreshRegistry<T>(use: (r: RunningRegistry) => Promise<T>): Promise<T> {
  const registry = await startRegistry()
  try {
    return await use(registry)
  } finally {
    await registry.stop()
  }
}

async function main(): Promise<void> {
  requireTools()
  const floor = await startupFloor()
  const source = await startRegistry()
  try {
    // 1. Same repository, one image to three new tags.
    const small = buildImage({ layerSizes: [4 * MiB, 1 * MiB] })
    await pushImage(source.url, 'bench/app', 'build', small)
    const retag = { promote: [] as number[], skopeo: [] as number[], requests: [] as string[] }
    for (let i = 0; i < SMALL_RUNS; i++) {
      const run = await promote({ image: `${source.host}/bench/app:build`, to: `a${i}\nb${i}\nc${i}` }, i === 0)
      retag.promote.push(run.ms)
      if (i === 0) retag.requests = run.requests
      const started = performance.now()
      for (const t of ['a', 'b', 'c']) await skopeo(`${source.host}/bench/app:build`, `${source.host}/bench/app:sk${t}${i}`)
      retag.skopeo.push(performance.now() - started)
    }
    push(
      'same repository, 1 image → 3 new tags',
      retag.promote,
      retag.skopeo,
      undefined,
      0.5,
      '≤ 0.5 × three skopeo runs',
      `${requestSummary(retag.requests)}: 1 ping, 1 resolve, per tag 1 check (GET), 1 write, 1 read-back`
    )

    // 2. Another repository in the same registry: a mount.
    const mount = { promote: [] as number[], skopeo: [] as number[], requests: [] as string[] }
    for (let i = 0; i < SMALL_RUNS; i++) {
      const run = await promote({ image: `${source.host}/bench/app:build`, to: `${source.host}/bench/mounted${i}:prod` }, i === 0)
      mount.promote.push(run.ms)
      if (i === 0) mount.requests = run.requests
      mount.skopeo.push((await skopeo(`${source.host}/bench/app:build`, `${source.host}/bench/skmounted${i}:prod`)).ms)
    }
    push(
      'another repository, same registry (mount)',
      mount.promote,
      mount.skopeo,
      undefined,
      1,
      '≤ skopeo',
      `${requestSummary(mount.requests)}: ping, resolve, 5 lookups for signatures/attestations/SBOMs to carry, check, 1 mount per blob, write, read-back`
    )

    // 3. Another registry, 256 MiB in 4 layers, cold destination; 7. the re-run.
    const big = buildImage({ layerSizes: [64 * MiB, 64 * MiB, 64 * MiB, 64 * MiB], uncompressed: true })
    await pushImage(source.url, 'bench/big', 'build', big)
    const cross = {
      promote: [] as number[],
      skopeo: [] as number[],
      raw: [] as number[],
      rerun: [] as number[],
      skopeoRerun: [] as number[],
      rerunRequests: [] as string[]
    }
    // Re-runs are short: several per copy, so they get as many samples as the other small scenarios.
    const rerunsPerCopy = Math.max(1, Math.ceil(SMALL_RUNS / RUNS))
    for (let i = 0; i < RUNS; i++) {
      await withFreshRegistry(async (target) => {
        cross.promote.push((await promote({ image: `${source.host}/bench/big:build`, to: `${target.host}/bench/big:prod` })).ms)
        for (let k = 0; k < rerunsPerCopy; k++) {
          const first = i === 0 && k === 0
          const rerun = await promote({ image: `${source.host}/bench/big:build`, to: `${target.host}/bench/big:prod` }, first)
          cross.rerun.push(rerun.ms)
          if (first) cross.rerunRequests = rerun.requests
        }
      })
      await withFreshRegistry(async (target) => {
        cross.skopeo.push((await skopeo(`${source.host}/bench/big:build`, `${target.host}/bench/big:prod`)).ms)
        for (let k = 0; k < rerunsPerCopy; k++) cross.skopeoRerun.push((await skopeo(`${source.host}/bench/big:build`, `${target.host}/bench/big:prod`)).ms)
      })
      await withFreshRegistry(async (target) => cross.raw.push((await raw(source, 'bench/big', big, target, 'prod')).ms))
    }
    push('another registry, 256 MiB in 4 layers (cold)', cross.promote, cross.skopeo, cross.raw, 1, '≤ 1.0 × skopeo, ≤ 1.15 × raw', undefined, 1.15)

    // 3b. The same 256 MiB through a proxy that caps request bodies at 16 MiB and says so (Cloudflare's serverless
    // registry): chunked uploads, against single PUTs through the same proxy with no cap, so the hop costs both the same.
    // Once on loopback, and once over a network: every request and response body paced at 32 MiB/s per connection
    // (round-trip time × window bounds a connection's throughput), where a chunk that waits to be read whole before
    // it is sent, or a source left unread while a chunk is sent, costs time that loopback hides.
    const NETWORK_RATE = 32 * MiB
    for (const network of [false, true]) {
      const chunked = { single: [] as ProcessRun[], chunked: [] as ProcessRun[], requests: [] as string[] }
      const spent = { single: [] as CpuSpent[], chunked: [] as CpuSpent[] }
      const paced = network ? await startRegistryProxy(targetOf(source.host), [], { bytesPerSecond: NETWORK_RATE }) : undefined
      try {
        for (let i = 0; i < RUNS; i++) {
          for (const capped of [false, true]) {
            await withFreshRegistry(async (target) => {
              const cap = await startBodyCapProxy(targetOf(target.host), {
                ...(capped ? { maxBody: 16 * MiB, announce: true } : { maxBody: Infinity, announce: false }),
                ...(network ? { bytesPerSecond: NETWORK_RATE } : {})
              })
              try {
                const meter = cpuMeter([source, target])
                const run = await promote({ image: `${paced?.host ?? source.host}/bench/big:build`, to: `${cap.host}/bench/big:prod` }, capped && i === 0)
                ;(capped ? spent.chunked : spent.single).push(meter())
                ;(capped ? chunked.chunked : chunked.single).push(run)
                if (capped && i === 0) chunked.requests = run.requests
              } finally {
                await cap.stop()
              }
            })
          }
        }
      } finally {
        await paced?.stop()
      }
      const single = median(chunked.single.map((r) => r.ms))
      const inChunks = median(chunked.chunked.map((r) => r.ms))
      const rss = (runs: ProcessRun[]): string => `${(Math.max(...runs.map((r) => r.peakRssKiB)) / 1024).toFixed(0)} MiB`
      rows.push({
        scenario: `another registry, 256 MiB in 4 layers, chunked (16 MiB cap announced)${network ? ', over a network (32 MiB/s per connection each way)' : ''}`,
        promote: inChunks,
        ratio: `${(inChunks / single).toFixed(2)} × single PUT (${single.toFixed(0)} ms)`,
        target: '≤ 1.0 × single PUT',
        met: inChunks <= single,
        note:
          `${requestSummary(chunked.requests)}; peak RSS ${rss(chunked.chunked)} chunked, ${rss(chunked.single)} single PUT (both through the same proxy); ` +
          `CPU (medians) chunked: oci-promote ${cpuMedian(spent.chunked, 'client')} ms, registries ${cpuMedian(spent.chunked, 'registries')} ms; ` +
          `single PUT: ${cpuMedian(spent.single, 'client')} ms, ${cpuMedian(spent.single, 'registries')} ms`
      })
    }

    // 5. Multi-arch index of 4 platforms, another registry.
    const index = buildMultiArch(4, { layerSizes: [8 * MiB, 2 * MiB], uncompressed: true })
    await pushImage(source.url, 'bench/multi', 'build', index)
    const multi = { promote: [] as number[], skopeo: [] as number[] }
    for (let i = 0; i < RUNS; i++) {
      await withFreshRegistry(async (target) =>
        multi.promote.push((await promote({ image: `${source.host}/bench/multi:build`, to: `${target.host}/bench/multi:prod` })).ms)
      )
      await withFreshRegistry(async (target) => multi.skopeo.push((await skopeo(`${source.host}/bench/multi:build`, `${target.host}/bench/multi:prod`)).ms))
    }
    push('multi-arch index, 4 platforms, another registry', multi.promote, multi.skopeo, undefined, 1, '≤ skopeo (--all)')

    // 6. verify-blobs on 256 MiB: hashing throughput against sha256sum of the same bytes.
    const files = await mkdtemp(join(tmpdir(), 'oci-promote-bench-'))
    const paths = await Promise.all(
      big.blobs.map(async (b, i) => {
        const path = join(files, String(i))
        await writeFile(path, b.bytes)
        return path
      })
    )
    const hashing = { promote: [] as number[], sha256sum: [] as number[], plan: [] as number[] }
    for (let i = 0; i < RUNS; i++) {
      hashing.promote.push((await promote({ image: `${source.host}/bench/big:build`, to: 'verified', mode: 'plan', 'verify-blobs': 'true' })).ms)
      hashing.plan.push((await promote({ image: `${source.host}/bench/big:build`, to: 'verified', mode: 'plan' })).ms)
      hashing.sha256sum.push(check(await runProcess('sha256sum', paths), 'sha256sum').ms)
    }
    await rm(files, { recursive: true, force: true })
    const hashMs = median(hashing.promote) - median(hashing.plan)
    rows.push({
      scenario: 'verify-blobs on 256 MiB (download + hash)',
      promote: median(hashing.promote),
      ratio: `${(hashMs / median(hashing.sha256sum)).toFixed(2)} × sha256sum`,
      target: '≤ 1.5 × sha256sum',
      met: hashMs <= 1.5 * median(hashing.sha256sum),
      note: `hashing adds ${hashMs.toFixed(0)} ms over a plan run (${((256 / hashMs) * 1000).toFixed(0)} MiB/s); sha256sum of the files: ${median(hashing.sha256sum).toFixed(0)} ms`
    })

    push(
      'already promoted (re-run)',
      cross.rerun,
      cross.skopeoRerun,
      undefined,
      0.5,
      '≤ 0.5 × skopeo',
      `${requestSummary(cross.rerunRequests)}: ping and resolve at the source, 5 lookups for attachments to carry, ping and check (GET, hashed) at the destination; no read-back`
    )

    // 8. A release of 20 images against skopeo loops, and how it grows from 5 to 80 images.
    await releaseScenario(source)

    // 4. Memory as layers grow: one layer of 64 MiB, 256 MiB, 1 GiB, to a cold registry.
    for (const size of [64, 256, 1024]) {
      const layer = buildImage({ layerSizes: [size * MiB], uncompressed: true })
      await pushImage(source.url, `bench/layer${size}`, 'build', layer)
      const runs = { promote: [] as ProcessRun[], skopeo: [] as ProcessRun[] }
      for (let i = 0; i < RUNS; i++) {
        await withFreshRegistry(async (target) =>
          runs.promote.push(await promote({ image: `${source.host}/bench/layer${size}:build`, to: `${target.host}/bench/layer:prod` }))
        )
        await withFreshRegistry(async (target) => runs.skopeo.push(await skopeo(`${source.host}/bench/layer${size}:build`, `${target.host}/bench/layer:prod`)))
      }
      const rss = Math.max(...runs.promote.map((r) => r.peakRssKiB)) / 1024
      const skopeoRss = Math.max(...runs.skopeo.map((r) => r.peakRssKiB)) / 1024
      memory.push(
        `| ${size} MiB | ${rss.toFixed(0)} MiB | ${skopeoRss.toFixed(0)} MiB | ${median(runs.promote.map((r) => r.ms)).toFixed(0)} ms | ${median(runs.skopeo.map((r) => r.ms)).toFixed(0)} ms |`
      )
      if (size === 1024) {
        rows.push({
          scenario: 'another registry, one 1 GiB layer: peak RSS',
          promote: median(runs.promote.map((r) => r.ms)),
          skopeo: median(runs.skopeo.map((r) => r.ms)),
          ratio: `${rss.toFixed(0)} MiB peak RSS`,
          target: '< 150 MiB',
          met: rss < 150
        })
      }
    }
  } finally {
    await source.stop()
  }
  report(floor)
}

function push(
  scenario: string,
  promoteMs: number[],
  skopeoMs: number[] | undefined,
  rawMs: number[] | undefined,
  limit: number,
  target: string,
  note?: string,
  rawLimit?: number
): void {
  const p = median(promoteMs)
  const s = skopeoMs ? median(skopeoMs) : undefined
  const r = rawMs ? median(rawMs) : undefined
  const ratios = [s ? `${(p / s).toFixed(2)} × skopeo` : '', r ? `${(p / r).toFixed(2)} × raw` : ''].filter(Boolean).join(', ')
  const met = (s === undefined || p <= limit * s) && (r === undefined || rawLimit === undefined || p <= rawLimit * r)
  rows.push({
    scenario,
    promote: p,
    ...(s !== undefined ? { skopeo: s } : {}),
    ...(r !== undefined ? { raw: r } : {}),
    ratio: ratios,
    target,
    met,
    ...(note ? { note } : {}),
    ...(s !== undefined ? { targetMs: limit * s } : {})
  })
}

function report(floor: { node: number; load: number }): void {
  const ms = (v?: number): string => (v === undefined ? '—' : `${v.toFixed(0)} ms`)
  const skopeoVersion = spawnSync('skopeo', ['--version'], { encoding: 'utf8' }).stdout.trim()
  const lines = [
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; Node ${process.version}; ${skopeoVersion}; Distribution ${spawnSync('docker-registry', ['--version'], { encoding: 'utf8' }).stdout.trim().split(' ').pop()} on loopback. Medians of ${RUNS} runs (copies) and ${SMALL_RUNS} runs (scenarios that move no bytes), wall time of whole processes.`,
    '',
    '| scenario | oci-promote | skopeo | raw curl | ratio | target | met |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.scenario} | ${ms(r.promote)} | ${ms(r.skopeo)} | ${ms(r.raw)} | ${r.ratio} | ${r.target} | ${r.met ? 'yes' : '**no**'} |`),
    '',
    ...rows.filter((r) => r.note).map((r) => `- ${r.scenario}: ${r.note}`),
    '',
    `Start-up floor (medians of ${SMALL_RUNS}): Node ${process.version} starting and exiting with nothing to do (\`node -e 0\`): ${ms(floor.node)}; oci-promote loading, reading its inputs and failing on the first one, no request: ${ms(floor.load)}.`,
    '',
    ...rows
      .filter((r) => !r.met && r.targetMs !== undefined && r.targetMs < floor.load)
      .map(
        (r) =>
          `- ${r.scenario}: the target is ${ms(r.targetMs)}, ${r.targetMs! < floor.node ? 'less than Node itself needs to start and exit' : 'less than loading the action takes'}; the run spends ${ms(r.promote - floor.load)} beyond start-up.`
      ),
    '',
    ...cpuNotes,
    '',
    'A release as it grows (one run, cold registry, one tag per image):',
    '',
    '| images | oci-promote | per image |',
    '|---|---|---|',
    ...scaling,
    '',
    'Peak RSS as layers grow (one layer, cold destination):',
    '',
    '| layer | oci-promote peak RSS | skopeo peak RSS | oci-promote time | skopeo time |',
    '|---|---|---|---|---|',
    ...memory
  ]
  console.log(lines.join('\n'))
  if (process.env['BENCH_WRITE'] !== '0') {
    const when = new Date().toISOString().slice(0, 10)
    void writeFile(
      new URL('./RESULTS.md', import.meta.url),
      `# Benchmark results (${when})\n\nProduced by \`npm run bench\` (bench/run.ts).\n\n${lines.join('\n')}\n`
    )
  }
}

await main()
