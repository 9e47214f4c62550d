import * as core from '@actions/core'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PromoteError, errorMessage } from './errors.js'
import { getInputs, type Inputs } from './inputs.js'
import { DockerCredentials } from './oci/credentials.js'
import { Stores } from './oci/stores.js'
import { Transport } from './oci/transport.js'
import { promote, type PromoteDependencies, type PromotionResult } from './promote.js'
import { rollback } from './rollback.js'
import { renderSummary } from './summary.js'
import { keylessRecordSigner, keyRecordSigner, type RecordSigner, type WorkflowRun } from './records.js'
import { commandSafe, untrusted } from './untrusted.js'
import { USER_AGENT } from './version.js'
import type { ImageVerifier } from './verify/index.js'
import type { SignaturePolicy } from './verify/policy.js'


/**
 * Every line this action writes goes through here: whatever a message
 * carries, none of its lines can start a workflow command.
 */
const log = {
  info: (message: string) => core.info(commandSafe(message)),
  debug: (message: string) => core.debug(commandSafe(message)),
  warning: (message: string) => core.warning(commandSafe(message)),
  fail: (message: string) => core.setFailed(commandSafe(message))
}

/** Sigstore is loaded only when a policy needs it: it is most of the bundle's start-up cost. */
async function createVerifier(inputs: Inputs, policy: SignaturePolicy | undefined): Promise<ImageVerifier | undefined> {
  if (!policy) return undefined
  const { createImageVerifier } = await import('./verify/index.js')
  return createImageVerifier(policy, {
    ...(inputs.trustedRoot ? { trustedRootPath: inputs.trustedRoot } : {}),
    tufCachePath: join(process.env['RUNNER_TEMP'] ?? tmpdir(), 'oci-promote-sigstore-tuf')
  })
}

/** The workflow run a promotion record names, from the runner's environment. */
function workflowRun(): WorkflowRun {
  const env = process.env
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

function verifiedOutput(result: PromotionResult): string {
  return JSON.stringify(
    result.verified.map((v) => ({
      format: v.format,
      subject: v.subject,
      ...(v.identity ? { identity: v.identity } : {}),
      ...(v.keyId ? { 'key-id': v.keyId } : {}),
      ...(v.issuer ? { issuer: v.issuer } : {}),
      ...(v.predicateType ? { 'predicate-type': v.predicateType } : {}),
      ...(v.logIndex !== undefined ? { 'log-index': v.logIndex } : {}),
      source: v.source
    }))
  )
}

function setOutputs(result: PromotionResult): void {
  core.setOutput('digest', result.digest)
  core.setOutput('image', result.image)
  core.setOutput(
    'verified',
    verifiedOutput(result)
  )
  core.setOutput(
    'promoted',
    JSON.stringify(
      result.destinations.map((d) => ({
        reference: d.reference,
        digest: d.digest,
        'previous-digest': d.previousDigest,
        status: d.status
      }))
    )
  )
}

/**
 * An optional side step: the promotion has happened, so a GitHub API failure
 * is a warning that says what is missing, not a failed step.
 */
async function deploy(inputs: Inputs, result: PromotionResult): Promise<void> {
  const env = process.env
  const repository = env['GITHUB_REPOSITORY']
  const ref = env['GITHUB_SHA'] ?? env['GITHUB_REF']
  if (!inputs.githubToken || !repository || !ref) {
    log.warning('github-deployment: no deployment recorded; it needs github-token and the GITHUB_REPOSITORY and GITHUB_SHA of a workflow run')
    return
  }
  try {
    const { recordDeployment } = await import('./deployments.js')
    const server = env['GITHUB_SERVER_URL'] ?? 'https://github.com'
    const deployment = await recordDeployment(result, {
      token: inputs.githubToken,
      repository,
      ref,
      environment: inputs.promotion.environment!,
      ...(env['GITHUB_API_URL'] ? { apiUrl: env['GITHUB_API_URL'] } : {}),
      ...(env['GITHUB_RUN_ID'] ? { logUrl: `${server}/${repository}/actions/runs/${env['GITHUB_RUN_ID']}` } : {})
    })
    log.info(`GitHub deployment ${deployment.id} of ${inputs.promotion.environment} recorded`)
  } catch (error) {
    log.warning(`github-deployment: the promotion succeeded but no deployment was recorded (${untrusted(errorMessage(error))}). The job needs "permissions: deployments: write"`)
  }
}

/** The action: the one place that reads inputs, writes outputs and fails the step. */
export async function run(): Promise<void> {
  let transport: Transport | undefined
  try {
    const inputs = getInputs()
    const deadline = AbortSignal.timeout(inputs.deadlineSeconds * 1000)
    transport = new Transport({ userAgent: USER_AGENT, debug: log.debug, signal: deadline })
    const verifier = await createVerifier(inputs, inputs.signaturePolicy)
    const gate = inputs.promotion.gate
    const recordVerifier = await createVerifier(inputs, inputs.promotion.recordPolicy)
    const recordSigner = await createRecordSigner(inputs)
    const githubRepository = process.env['GITHUB_REPOSITORY']
    const externalEvidence =
      verifier && inputs.githubToken && githubRepository
        ? (await import('./verify/github.js')).githubAttestations({ token: inputs.githubToken, repository: githubRepository, ...(process.env['GITHUB_API_URL'] ? { apiUrl: process.env['GITHUB_API_URL'] } : {}) })
        : undefined
    const stores = new Stores({
      transport,
      credentials: new DockerCredentials({
        ...(inputs.githubToken ? { githubToken: inputs.githubToken } : {}),
        ...(process.env['GITHUB_ACTOR'] ? { githubActor: process.env['GITHUB_ACTOR'] } : {}),
        onSecret: (secret) => core.setSecret(secret)
      }),
      insecureRegistries: inputs.insecureRegistries,
      onSecret: (secret) => core.setSecret(secret)
    })
    const request = {
        destinations: inputs.to,
        ...(inputs.immutableTags ? { immutableTags: inputs.immutableTags } : {}),
        verifyBlobs: inputs.verifyBlobs,
        concurrency: inputs.concurrency,
        copySignatures: inputs.copySignatures,
        historyTags: inputs.historyTags
      }
    const deps: PromoteDependencies = {
        repository: (ref) => stores.repository(ref),
        declareAccess: (ref, action) => stores.declareAccess(ref, action),
        checkWriteAccess: (ref) => stores.checkWriteAccess(ref),
        log,
        retry: transport.retryPolicy,
        signal: deadline,
        ...(verifier ? { verifier } : {}),
        ...(externalEvidence ? { externalEvidence } : {}),
        ...(gate && recordVerifier ? { gate: { environment: gate.environment, verifier: recordVerifier } } : {}),
        ...(recordSigner && inputs.promotion.environment
          ? { record: { environment: inputs.promotion.environment, signer: recordSigner, run: workflowRun(), action: inputs.mode === 'rollback' ? ('rollback' as const) : ('promote' as const) } }
          : {})
      }
    const result =
      inputs.mode === 'rollback'
        ? await rollback({ ...request, environment: inputs.promotion.environment! }, { ...deps, recordVerifier: recordVerifier! })
        : await promote({ ...request, source: inputs.image, mode: inputs.mode, ...(inputs.digest ? { expectedDigest: inputs.digest } : {}) }, deps)
    setOutputs(result)
    if (inputs.githubDeployment && result.mode === 'promote') await deploy(inputs, result)
    for (const d of result.destinations) log.info(`${d.status.padEnd(9)} ${d.reference} @ ${d.digest}`)
    if (!result.digest) log.info('the destinations now hold different digests, so the digest and image outputs are empty: read each destination\'s from the promoted output')
    for (const note of result.notes) log.warning(note)
    if (inputs.showSummary) {
      await core.summary.addRaw(renderSummary(result, { signaturesChecked: verifier !== undefined })).write()
    }
  } catch (error) {
    // The code first, as scripts and searches key on it: "SIGNATURE_NOT_VERIFIED: signature policy not satisfied …".
    log.fail(error instanceof PromoteError ? `${error.code}: ${error.message}` : errorMessage(error))
    // The cause is whatever a library threw, often with a registry's or a server's words in it.
    const cause = error instanceof Error ? error.cause : undefined
    if (cause !== undefined) log.info(`caused by: ${untrusted(errorMessage(cause))}`)
  } finally {
    await transport?.close()
  }
}
