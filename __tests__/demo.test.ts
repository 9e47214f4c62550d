// `npm run demo`, the README's first command, as a newcomer runs it: it must finish, show the signature verified at
// every step, and end with the gate refusing an unsigned and a foreign-signed build.
import { expect, it } from '@jest/globals'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runProcess } from '../scripts/lib/runner.ts'

it('promotes a signed build through every environment and refuses the unsigned and the foreign-signed', async () => {
  const demo = fileURLToPath(new URL('../scripts/demo.ts', import.meta.url))
  const run = await runProcess(process.execPath, [demo, await mkdtemp(join(tmpdir(), 'oci-promote-demo-test-'))])
  expect(run.stderr).toBe('')
  expect(run.exitCode).toBe(0)
  expect(run.stdout.match(/signature policy satisfied by 1 signature/g)).toHaveLength(5)
  expect(run.stdout).toMatch(/an unsigned build: refused\)\n.*\n {2}refused: SIGNATURE_NOT_VERIFIED/)
  expect(run.stdout).toMatch(/signed with someone else's key: refused\)\n[\s\S]*SIGNATURE_ERROR: signature verification failed/)
  expect(run.stdout).toContain('Done.')
})
