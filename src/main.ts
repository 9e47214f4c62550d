import * as core from '@actions/core'
import { errorMessage, failureMessage } from './errors.js'
import { loadInputs, type Inputs } from './inputs.js'
import type { PromotionResult } from './promote.js'
import { outputsOf, resultLines, runPromotion, type RunOutcome } from './run.js'
import { renderSummary } from './summary.js'
import { commandSafe, untrusted } from './untrusted.js'

/**
 * Every line this action writes goes through here: whatever a message
 * carries, none of its lines can start a workflow command.
 */
const log = {
  info: (message: string) => core.info(commandSafe(message)),
  // Only when the run asks for debug output (RUNNER_DEBUG): the runner hides ::debug:: lines otherwise, yet writing
  // one per request cost a release of 20 images ~70 ms of CPU (a synchronous write to the stdout pipe each).
  ...(core.isDebug() ? { debug: (message: string) => core.debug(commandSafe(message)) } : {}),
  warning: (message: string) => core.warning(commandSafe(message)),
  fail: (message: string) => core.setFailed(commandSafe(message))
}

function setOutputs(outcome: RunOutcome): void {
  const outputs = outputsOf(outcome)
  core.setOutput('digest', outputs.digest)
  core.setOutput('image', outputs.image)
  core.setOutput('verified', JSON.stringify(outputs.verified))
  core.setOutput('promoted', JSON.stringify(outputs.promoted))
  if (outputs.release) core.setOutput('release', JSON.stringify(outputs.release))
  if (outputs.pruned) core.setOutput('pruned', JSON.stringify(outputs.pruned))
}

/**
 * An optional side step: the promotion has happened, so a GitHub API failure
 * is a warning that says what is missing, not a failed step.
 */
async function deploy(inputs: Inputs, results: readonly PromotionResult[]): Promise<void> {
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
    const deployment = await recordDeployment(results, {
      token: inputs.githubToken,
      repository,
      ref,
      environment: inputs.promotion.environment!,
      ...(env['GITHUB_API_URL'] ? { apiUrl: env['GITHUB_API_URL'] } : {}),
      ...(env['GITHUB_RUN_ID'] ? { logUrl: `${server}/${repository}/actions/runs/${env['GITHUB_RUN_ID']}` } : {})
    })
    log.info(`GitHub deployment ${deployment.id} of ${inputs.promotion.environment} recorded`)
  } catch (error) {
    log.warning(
      `github-deployment: the promotion succeeded but no deployment was recorded (${untrusted(errorMessage(error))}). The job needs "permissions: deployments: write"`
    )
  }
}

/** The action: the one place that reads inputs, writes outputs and fails the step. */
export async function run(): Promise<void> {
  try {
    const inputs = await loadInputs()
    const outcome = await runPromotion(inputs, { log, onSecret: (secret) => core.setSecret(secret), env: process.env })
    setOutputs(outcome)
    if (inputs.githubDeployment && inputs.mode === 'promote' && outcome.results.length > 0) await deploy(inputs, outcome.results)
    for (const line of resultLines(outcome)) log.info(line)
    for (const note of outcome.results.flatMap((r) => r.notes)) log.warning(note)
    if (inputs.showSummary) await core.summary.addRaw(renderSummary(outcome)).write()
  } catch (error) {
    log.fail(failureMessage(error))
    // The cause is whatever a library threw, often with a registry's or a server's words in it.
    const cause = error instanceof Error ? error.cause : undefined
    if (cause !== undefined) log.info(`caused by: ${untrusted(errorMessage(cause))}`)
  }
}
