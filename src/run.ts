import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Inputs, ReleaseInput } from './inputs.js'
import type { CopyProgress } from './copy.js'
import { DockerCredentials } from './oci/credentials.js'
import { usageLine, type RegistryUsage } from './oci/registry.js'
import { Stores } from './oci/stores.js'
import { Transport } from './oci/transport.js'
import { promoteRelease, type Logger, type PromoteDependencies, type PromotionResult } from './promote.js'
import { keylessRecordSigner, keyRecordSigner, type RecordSigner, type WorkflowRun } from './records.js'
import { prune, type PruneResult } from './prune.js'
import { rollbackRelease } from './rollback.js'
import { PromoteError } from './errors.js'
import { USER_AGENT } from './version.js'
import type { ImageVerifier } from './verify/index.js'
import type { SignaturePolicy } from './verify/policy.js'

/**
 * The engine the action and the CLI share: from checked inputs to a
 * promotion's result. It knows nothing of @actions/core; where its output
 * goes (workflow log, terminal) and how secrets are masked is the caller's.
 */
export interface RunContext {
  readonly log: Logger
  readonly onSecret: (secret: string) => void
  /** GITHUB_* of a workflow run (records, attestations, ghcr.io), RUNNER_TEMP; process.env in practice. */
  readonly env: Readonly<Record<string, string | undefined>>
  /** Told after each blob lands at a destination; the CLI draws a progress line on a terminal. */
  readonly progress?: (progress: CopyProgress) => void
}

export interface RunOutcome {
  /** One per image: the image of a single-image run, or each image of a release (this job's shard of it). */
  readonly results: readonly PromotionResult[]
  /** Set for a run of the release input. */
  readonly release?: ReleaseInput
  /** Set for mode: prune (results is then empty). */
  readonly pruned?: PruneResult
  /** Set for mode: rollback: the results are promotions of the digests the destinations went back to. */
  readonly rolledBack?: boolean
  /** False when verify-signature was off. */
  readonly signaturesChecked: boolean
  /** Manifest pulls per registry (Docker Hub rate-limits them) and the rate limit each last reported. */
  readonly usage: readonly RegistryUsage[]
}

/** Sigstore is loaded only when a policy needs it: it is most of the bundle's start-up cost. */
async function createVerifier(inputs: Inputs, policy: SignaturePolicy | undefined, env: RunContext['env']): Promise<ImageVerifier | undefined> {
  if (!policy) return undefined
  const { createImageVerifier } = await import('./verify/index.js')
  return createImageVerifier(policy, {
    ...(inputs.trustedRoot ? { trustedRootPath: inputs.trustedRoot } : {}),
    tufCachePath: join(env['RUNNER_TEMP'] ?? tmpdir(), 'oci-promote-sigstore-tuf')
  })
}

/** The workflow run a promotion record names, from the runner's environment. */
function workflowRun(env: RunContext['env']): WorkflowRun {
  const pick = (name: string): string | undefined => env[name] || undefined
  const run = {
    repository: pick('GITHUB_REPOSITORY'),
    workflowRef: pick('GITHUB_WORKFLOW_REF'),
    commit: pick('GITHUB_SHA'),
    runId: pick('GITHUB_RUN_ID'),
    runAttempt: pick('GITHUB_RUN_ATTEMPT'),
    actor: pick('GITHUB_ACTOR')
  }
  return Object.fromEntries(Object.entries(run).filter(([, v]) => v !== undefined))
}

async function createRecordSigner(inputs: Inputs): Promise<RecordSigner | undefined> {
  const record = inputs.promotion.record
  if (!record) return undefined
  return record.signingKey ? keyRecordSigner(record.signingKey) : keylessRecordSigner(record)
}

/** The dependencies a promotion runs on, over one set of stores: the action, the CLI and the tests build them here. */
export function storeDependencies(stores: Stores, rest: Omit<PromoteDependencies, 'repository' | 'declareAccess' | 'checkWriteAccess'>): PromoteDependencies {
  return {
    repository: (ref) => stores.repository(ref),
    declareAccess: (ref, action) => stores.declareAccess(ref, action),
    checkWriteAccess: (ref) => stores.checkWriteAccess(ref),
    ...rest
  }
}

/** Promotes (or plans, verifies, rolls back) as the inputs say, within their deadline. */
export async function runPromotion(inputs: Inputs, context: RunContext): Promise<RunOutcome> {
  const { log, env } = context
  const deadline = AbortSignal.timeout(inputs.deadlineSeconds * 1000)
  const transport = new Transport({ userAgent: USER_AGENT, ...(log.debug ? { debug: log.debug } : {}), signal: deadline })
  try {
    const verifier = await createVerifier(inputs, inputs.signaturePolicy, env)
    const gate = inputs.promotion.gate
    const recordVerifier = await createVerifier(inputs, inputs.promotion.recordPolicy, env)
    const recordSigner = await createRecordSigner(inputs)
    const githubRepository = env['GITHUB_REPOSITORY']
    const externalEvidence =
      verifier && inputs.githubToken && githubRepository
        ? (await import('./verify/github.js')).githubAttestations({
            token: inputs.githubToken,
            repository: githubRepository,
            ...(env['GITHUB_API_URL'] ? { apiUrl: env['GITHUB_API_URL'] } : {})
          })
        : undefined
    const stores = new Stores({
      transport,
      credentials: new DockerCredentials({
        ...(inputs.githubToken ? { githubToken: inputs.githubToken } : {}),
        ...(env['GITHUB_ACTOR'] ? { githubActor: env['GITHUB_ACTOR'] } : {}),
        onSecret: context.onSecret
      }),
      insecureRegistries: inputs.insecureRegistries,
      onSecret: context.onSecret
    })
    const request = {
      ...(inputs.immutableTags ? { immutableTags: inputs.immutableTags } : {}),
      verifyBlobs: inputs.verifyBlobs,
      concurrency: inputs.concurrency,
      copySignatures: inputs.copySignatures,
      historyTags: inputs.historyTags
    }
    const deps = storeDependencies(stores, {
      log,
      ...(context.progress ? { progress: context.progress } : {}),
      retry: transport.retryPolicy,
      signal: deadline,
      ...(verifier ? { verifier } : {}),
      ...(externalEvidence ? { externalEvidence } : {}),
      ...(gate && recordVerifier ? { gate: { environment: gate.environment, verifier: recordVerifier } } : {}),
      ...(recordSigner && inputs.promotion.environment
        ? {
            record: {
              environment: inputs.promotion.environment,
              signer: recordSigner,
              run: workflowRun(env),
              action: inputs.mode === 'rollback' ? ('rollback' as const) : ('promote' as const)
            }
          }
        : {})
    })
    const mode = inputs.mode
    if (mode === 'prune') {
      const image = inputs.images[0]!.image
      // ghcr.io deletes through GitHub Packages' API, not the registry's: https://docs.github.com/en/rest/packages/packages
      const ghcr = image.kind === 'registry' && image.registry === 'ghcr.io'
      if (ghcr && !inputs.githubToken) {
        throw new PromoteError(
          'INPUT_INVALID',
          'input "github-token": mode: prune on ghcr.io lists and deletes through the GitHub Packages API, which needs a token with packages: read and delete (permissions: packages: write and a token allowed to delete the package)'
        )
      }
      const versions =
        ghcr && inputs.githubToken
          ? (await import('./packages.js')).githubPackages({
              token: inputs.githubToken,
              repository: image.repository,
              ...(env['GITHUB_API_URL'] ? { apiUrl: env['GITHUB_API_URL'] } : {})
            })
          : undefined
      const pruned = await prune(
        stores.repository(image),
        { ...inputs.prune!, ...(inputs.immutableTags ? { immutableTags: inputs.immutableTags } : {}), concurrency: inputs.concurrency },
        { log, ...(versions ? { versions } : {}), ...(recordVerifier ? { recordVerifier } : {}) }
      )
      return { results: [], pruned, signaturesChecked: false, usage: stores.usage() }
    }
    const results =
      mode === 'rollback'
        ? await rollbackRelease(
            inputs.images.map((i) => {
              const current = i.digest ?? i.image.digest
              return { ...request, destinations: i.to, environment: inputs.promotion.environment!, ...(current ? { current } : {}) }
            }),
            { ...deps, recordVerifier: recordVerifier! }
          )
        : await promoteRelease(
            inputs.images.map((i) => ({ ...request, source: i.image, destinations: i.to, mode, ...(i.digest ? { expectedDigest: i.digest } : {}) })),
            deps
          )
    return {
      results,
      ...(inputs.release ? { release: inputs.release } : {}),
      ...(mode === 'rollback' ? { rolledBack: true } : {}),
      signaturesChecked: verifier !== undefined,
      usage: stores.usage()
    }
  } finally {
    await transport.close()
  }
}

export interface RunOutputs {
  readonly digest: string
  readonly image: string
  readonly verified: object[]
  readonly promoted: object[]
  /** A release's images, one object each: its source, the pinned reference and its digest. */
  readonly release?: object[]
  /** mode: prune, one object per digest considered: digest, tags, status, reason. */
  readonly pruned?: object[]
}

/** The outputs of a run, named as action.yml names them; the action sets them, the CLI prints them. */
export function outputsOf(outcome: RunOutcome): RunOutputs {
  // digest and image name one image; a release has many, listed in its own output.
  const single = outcome.release ? undefined : outcome.results[0]
  return {
    digest: single?.digest ?? '',
    image: single?.image ?? '',
    verified: outcome.results.flatMap((result) =>
      result.verified.map((v) => ({
        format: v.format,
        subject: v.subject,
        ...(v.identity ? { identity: v.identity } : {}),
        ...(v.keyId ? { 'key-id': v.keyId } : {}),
        ...(v.issuer ? { issuer: v.issuer } : {}),
        ...(v.predicateType ? { 'predicate-type': v.predicateType } : {}),
        ...(v.logIndex !== undefined ? { 'log-index': v.logIndex } : {}),
        ...(v.claims ? { claims: v.claims } : {}),
        source: v.source
      }))
    ),
    promoted: outcome.results.flatMap((result) =>
      result.destinations.map((d) => ({
        reference: d.reference,
        digest: d.digest,
        'previous-digest': d.previousDigest,
        status: d.status,
        ...(result.image ? { image: result.image } : {})
      }))
    ),
    ...(outcome.release ? { release: outcome.results.map((r) => ({ source: r.source, image: r.image, digest: r.digest })) } : {}),
    ...(outcome.pruned ? { pruned: outcome.pruned.digests.map((d) => ({ digest: d.digest, tags: d.tags, status: d.status, reason: d.reason })) } : {})
  }
}

/** A run's lines for the log, after its result: one per destination, why digest may be empty, pulls per registry. */
export function resultLines(outcome: RunOutcome): string[] {
  const split = "the destinations now hold different digests, so the digest and image outputs are empty: read each destination's from the promoted output"
  const { release } = outcome
  const shard = release?.shard ? ` (shard ${release.shard.index}/${release.shard.count}: ${outcome.results.length} of them)` : ''
  const pruned = outcome.pruned?.digests ?? []
  return [
    ...pruned.map((d) => `${d.status.padEnd(8)} ${d.digest}${d.tags.length ? ` (${d.tags.join(', ')})` : ''}: ${d.reason}`),
    ...(release ? [`release of ${release.size} images${shard}`] : []),
    ...outcome.results.flatMap((result) => [
      ...(release ? [`${result.source} @ ${result.digest}`] : []),
      ...result.destinations.map((d) => `${release ? '  ' : ''}${d.status.padEnd(9)} ${d.reference} @ ${d.digest}`),
      ...(result.digest ? [] : [split])
    ]),
    ...outcome.usage.map(usageLine)
  ]
}
