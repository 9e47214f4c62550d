import { getOctokit } from '@actions/github'
import type { PromotionResult } from './promote.js'

export interface DeploymentContext {
  readonly token: string
  /** owner/repo */
  readonly repository: string
  readonly ref: string
  readonly environment: string
  readonly apiUrl?: string
  /** Link to the run, shown on the deployment status. */
  readonly logUrl?: string
}

/**
 * Records the promotion as a GitHub deployment of the environment with a
 * success status, so "what runs in production right now?" has an answer in
 * GitHub's UI: the pinned reference is the deployment's payload.
 */
export async function recordDeployment(result: PromotionResult, context: DeploymentContext): Promise<{ id: number; url: string }> {
  const octokit = getOctokit(context.token, context.apiUrl ? { baseUrl: context.apiUrl } : {})
  const [owner, repo] = context.repository.split('/') as [string, string]
  const moved = result.destinations.filter((d) => d.status !== 'unchanged').map((d) => d.reference)
  const deployment = await octokit.rest.repos.createDeployment({
    owner,
    repo,
    ref: context.ref,
    environment: context.environment,
    auto_merge: false,
    // The image was already verified by this run; commit statuses of the ref are not its gate.
    required_contexts: [],
    description: `${result.image} → ${moved.length ? moved.join(', ') : 'unchanged'}`.slice(0, 140),
    payload: { image: result.image, digest: result.digest, destinations: result.destinations.map((d) => d.reference) },
    transient_environment: false
  })
  const data = deployment.data as { id?: number; url?: string; message?: string }
  if (typeof data.id !== 'number') throw new Error(`GitHub did not create the deployment: ${data.message ?? 'no id returned'}`)
  await octokit.rest.repos.createDeploymentStatus({
    owner,
    repo,
    deployment_id: data.id,
    state: 'success',
    description: `${result.digest.slice(0, 19)}… promoted by oci-promote`,
    ...(context.logUrl ? { log_url: context.logUrl } : {})
  })
  return { id: data.id, url: data.url ?? '' }
}
