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
 * GitHub's UI: the pinned reference is the deployment's payload; a release is
 * one deployment whose payload lists every image.
 */
export async function recordDeployment(results: readonly PromotionResult[], context: DeploymentContext): Promise<{ id: number; url: string }> {
  const octokit = getOctokit(context.token, context.apiUrl ? { baseUrl: context.apiUrl } : {})
  const [owner, repo] = context.repository.split('/') as [string, string]
  const image = (result: PromotionResult): { image: string; digest: string; destinations: string[] } => ({
    image: result.image,
    digest: result.digest,
    destinations: result.destinations.map((d) => d.reference)
  })
  const [only] = results
  const moved = results.flatMap((r) => r.destinations.filter((d) => d.status !== 'unchanged').map((d) => d.reference))
  const deployment = await octokit.rest.repos.createDeployment({
    owner,
    repo,
    ref: context.ref,
    environment: context.environment,
    auto_merge: false,
    // The image was already verified by this run; commit statuses of the ref are not its gate.
    required_contexts: [],
    description: (results.length === 1 && only
      ? `${only.image} → ${moved.length ? moved.join(', ') : 'unchanged'}`
      : `release of ${results.length} images → ${moved.length ? `${moved.length} tag${moved.length === 1 ? '' : 's'} moved` : 'unchanged'}`
    ).slice(0, 140),
    payload: results.length === 1 && only ? image(only) : { images: results.map(image) },
    transient_environment: false
  })
  const data = deployment.data as { id?: number; url?: string; message?: string }
  if (typeof data.id !== 'number') throw new Error(`GitHub did not create the deployment: ${data.message ?? 'no id returned'}`)
  await octokit.rest.repos.createDeploymentStatus({
    owner,
    repo,
    deployment_id: data.id,
    state: 'success',
    description: results.length === 1 && only ? `${only.digest.slice(0, 19)}… promoted by oci-promote` : `${results.length} images promoted by oci-promote`,
    ...(context.logUrl ? { log_url: context.logUrl } : {})
  })
  return { id: data.id, url: data.url ?? '' }
}
