// Public data from other projects lives in ../shared/fixtures beside the checkout (CI lays it there too) and is
// read from there, never copied into the project.
import { describe } from '@jest/globals'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export const SHARED_FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url))
const present = existsSync(SHARED_FIXTURES)

/** The absolute path of a file under ../shared/fixtures. */
export function sharedFixture(path: string): string {
  return join(SHARED_FIXTURES, path)
}

/**
 * `describe` for suites that read ../shared/fixtures: skipped, saying why, only
 * where the folder is absent; in CI its absence fails the run instead.
 */
export function describeWithSharedFixtures(name: string, body: () => void): void {
  if (present || process.env['CI']) {
    describe(name, body)
    return
  }
  console.warn(`SKIPPED "${name}": ${SHARED_FIXTURES} is absent (it is laid beside the checkout in CI)`)
  describe.skip(name, body)
}
