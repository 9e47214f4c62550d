import * as core from '@actions/core'
import { PromoteError, errorMessage } from './errors.js'
import { getInputs, type Inputs } from './inputs.js'
import { DockerCredentials } from './oci/credentials.js'
import { Stores } from './oci/stores.js'
import { Transport } from './oci/transport.js'
import { promote, type PromotionResult } from './promote.js'
import { renderSummary } from './summary.js'

const USER_AGENT = 'oci-promote/0.1'

function checkSignaturePolicy(inputs: Inputs): string {
  if (!inputs.verifySignature) {
    return 'not verified: verify-signature is false for this run.'
  }
  throw new PromoteError(
    'SIGNATURE_POLICY_MISSING',
    'input "verify-signature" is true, but this version of oci-promote cannot verify signatures yet, so it refuses to promote rather than promote unverified. ' +
      'Set verify-signature: false to promote without a signature check.'
  )
}

function setOutputs(result: PromotionResult): void {
  core.setOutput('digest', result.digest)
  core.setOutput('image', result.image)
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

/** The action: the one place that reads inputs, writes outputs and fails the step. */
export async function run(): Promise<void> {
  const transport = new Transport({ userAgent: USER_AGENT, debug: (m) => core.debug(m) })
  try {
    const inputs = getInputs()
    const signatureNote = checkSignaturePolicy(inputs)
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
    const result = await promote(
      {
        source: inputs.image,
        ...(inputs.digest ? { expectedDigest: inputs.digest } : {}),
        destinations: inputs.to,
        mode: inputs.mode,
        ...(inputs.immutableTags ? { immutableTags: inputs.immutableTags } : {}),
        verifyBlobs: inputs.verifyBlobs,
        concurrency: inputs.concurrency
      },
      {
        repository: (ref) => stores.repository(ref),
        declareAccess: (ref, action) => stores.declareAccess(ref, action),
        checkWriteAccess: (ref) => stores.checkWriteAccess(ref),
        log: { info: (m) => core.info(m), debug: (m) => core.debug(m) },
        retry: transport.retryPolicy
      }
    )
    setOutputs(result)
    for (const d of result.destinations) core.info(`${d.status.padEnd(9)} ${d.reference} @ ${d.digest}`)
    if (inputs.showSummary) {
      await core.summary.addRaw(renderSummary(result, { signatureNote })).write()
    }
  } catch (error) {
    core.setFailed(errorMessage(error))
    const cause = error instanceof Error ? error.cause : undefined
    if (cause !== undefined) core.info(`caused by: ${errorMessage(cause)}`)
  } finally {
    await transport.close()
  }
}
