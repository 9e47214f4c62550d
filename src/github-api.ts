// What every caller of GitHub's REST API here shares: where it is (it pages with Link headers: oci/transport.ts nextLink).

/** api.github.com; GitHub Enterprise Server and the tests' stand-ins come as GITHUB_API_URL. */
export const DEFAULT_API_URL = 'https://api.github.com'
