// What every caller of GitHub's REST API here shares: where it is, and how it pages.

/** api.github.com; GitHub Enterprise Server and the tests' stand-ins come as GITHUB_API_URL. */
export const DEFAULT_API_URL = 'https://api.github.com'

/** The `rel="next"` target of a Link header (RFC 8288), as GitHub paginates with `page` numbers or `after` cursors. */
export function nextLink(header: string | undefined): string | undefined {
  for (const part of header?.split(',') ?? []) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part)
    if (match && /(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(match[2]!)) return match[1]
  }
  return undefined
}
