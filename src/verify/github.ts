import { getOctokit } from '@actions/github'
import { errorMessage } from '../errors.js'
import { evidenceFromBundles, type Evidence } from './evidence.js'

export interface GithubAttestationSource {
  readonly token: string
  /** owner/repo whose attestations are read: the workflow's repository. */
  readonly repository: string
  readonly apiUrl?: string
}

interface AttestationsResponse {
  attestations?: { bundle?: unknown; bundle_url?: string }[]
}

/**
 * GitHub artifact attestations for a digest, as `gh attestation verify` reads
 * them: GET /repos/{owner}/{repo}/attestations/{subject_digest}. A failing API
 * becomes evidence with a problem, so it is reported and never trusted.
 */
export function githubAttestations(source: GithubAttestationSource): (subject: string) => Promise<Evidence[]> {
  const octokit = getOctokit(source.token, source.apiUrl ? { baseUrl: source.apiUrl } : {})
  const [owner, repo] = source.repository.split('/')
  return async (subject) => {
    const label = `GitHub attestations of ${source.repository}`
    try {
      const response = await octokit.request('GET /repos/{owner}/{repo}/attestations/{subject_digest}', {
        owner: owner!,
        repo: repo!,
        subject_digest: subject,
        per_page: 100
      })
      const data = response.data as AttestationsResponse
      const bundles = (data.attestations ?? []).flatMap((a) => (a.bundle === undefined ? [] : [a.bundle]))
      const urlOnly = (data.attestations ?? []).filter((a) => a.bundle === undefined).length
      const evidence = evidenceFromBundles('github-attestation', subject, label, bundles)
      if (urlOnly > 0) evidence.push({ format: 'github-attestation', subject, source: label, problem: `${urlOnly} attestations are only available compressed at bundle_url, which this version does not read` })
      return evidence
    } catch (error) {
      if ((error as { status?: number }).status === 404) return []
      return [{ format: 'github-attestation', subject, source: label, problem: `the API request failed: ${errorMessage(error)}` }]
    }
  }
}
