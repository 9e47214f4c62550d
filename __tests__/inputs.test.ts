// Malformed and hostile values for every input: each is refused before any
// network request, with an error that names the input and says what to do.
import { afterEach, describe, expect, it } from '@jest/globals'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PromoteError } from '../src/errors.ts'
import { getInputs } from '../src/inputs.ts'

const DIGEST = `sha256:${'ab'.repeat(32)}`
const GOOD = { image: 'ghcr.io/acme/app:build-1', to: 'staging', 'verify-signature': 'false' }

function withInputs(inputs: Record<string, string>): () => unknown {
  return () => {
    for (const key of Object.keys(process.env)) if (key.startsWith('INPUT_')) delete process.env[key]
    for (const [name, value] of Object.entries(inputs)) process.env[`INPUT_${name.toUpperCase()}`] = value
    return getInputs()
  }
}
afterEach(() => {
  for (const key of Object.keys(process.env)) if (key.startsWith('INPUT_')) delete process.env[key]
})

const dir = mkdtempSync(join(tmpdir(), 'oci-promote-inputs-'))
const notAKey = join(dir, 'not-a-key.pem')
writeFileSync(notAKey, 'hello')

// [input overrides, the input the error must name, a fragment of the fix it must give]
const CASES: [Record<string, string>, string, string][] = [
  [{ image: '' }, 'image', 'is required'],
  [{ image: ' ' }, 'image', 'is required'],
  [{ image: 'UPPER/case' }, 'image', 'must be lowercase'],
  [{ image: 'ghcr.io/acme/app:' }, 'image', 'not a valid tag'],
  [{ image: 'ghcr.io/acme/app:.dot' }, 'image', 'not a valid tag'],
  [{ image: `ghcr.io/acme/app:${'x'.repeat(200)}` }, 'image', 'at most 128'],
  [{ image: 'ghcr.io/acme/app@sha256:short' }, 'image', 'sha256: followed by 64 lowercase hex'],
  [{ image: `ghcr.io/acme/app@md5:${'a'.repeat(32)}` }, 'image', 'not a sha256 digest'],
  [{ image: 'ghcr.io/acme app' }, 'image', 'white space'],
  [{ image: 'ghcr.io/acme/app\nevil' }, 'image', 'white space'],
  [{ image: 'ghcr.io/acme/app;rm -rf /' }, 'image', 'white space'],
  [{ image: 'ghcr.io/acme/$(id)' }, 'image', 'must be lowercase'],
  [{ image: '../../etc/passwd' }, 'image', 'not a valid registry host'],
  [{ image: 'https://ghcr.io/acme/app' }, 'image', 'Expected host/repository:tag'],
  [{ image: '-registry.io/app' }, 'image', 'not a valid registry host'],
  [{ image: 'ghcr.io//app' }, 'image', 'repository component ""'],
  [{ image: `ghcr.io/${'a/'.repeat(150)}b` }, 'image', 'longer than 255'],
  [{ image: 'oci:' }, 'image', 'layout path is empty'],
  [{ image: 'oci:../outside:tag' }, 'image', 'leaves the working directory'],
  [{ image: 'oci:sub/../../../escape' }, 'image', 'leaves the working directory'],
  [{ image: 'oci:/tmp/x\u0000y' }, 'image', 'NUL'],
  [{ image: 'x'.repeat(70_000) }, 'image', 'at most 65536 are accepted'],
  [{ digest: 'latest' }, 'digest', 'sha256: followed by 64 lowercase hex'],
  [{ digest: DIGEST.toUpperCase() }, 'digest', 'sha256: followed by 64 lowercase hex'],
  [{ digest: `${DIGEST} ` + 'extra' }, 'digest', 'sha256: followed by 64 lowercase hex'],
  [{ digest: DIGEST.slice(0, -1) }, 'digest', 'sha256: followed by 64 lowercase hex'],
  [{ image: `ghcr.io/acme/app@sha256:${'cd'.repeat(32)}`, digest: DIGEST }, 'digest', 'contradicts'],
  [{ to: '' }, 'to', 'is required'],
  [{ to: '\n\n# only a comment\n' }, 'to', 'is required'],
  [{ to: '-leading-dash' }, 'to', 'not a valid tag'],
  [{ to: 'ok, .bad' }, 'to', 'not a valid tag'],
  [{ to: `ghcr.io/acme/app@${DIGEST}` }, 'to', 'not a digest'],
  [{ to: 'ghcr.io/Acme/app:prod' }, 'to', 'must be lowercase'],
  [{ to: 'oci:../../tmp/x:prod' }, 'to', 'leaves the working directory'],
  [{ to: 'tag with space' }, 'to', 'not a valid tag'],
  [{ to: 'prod\u0000' }, 'to', 'not a valid tag'],
  [{ mode: 'deploy' }, 'mode', 'not one of promote, plan, verify'],
  [{ mode: 'PROMOTE' }, 'mode', 'not one of promote, plan, verify'],
  [{ 'immutable-tags': '(' }, 'immutable-tags', 'use "none"'],
  [{ 'immutable-tags': '[z-a]' }, 'immutable-tags', 'not a valid regular expression'],
  [{ 'verify-blobs': 'sometimes' }, 'verify-blobs', 'use true or false'],
  [{ 'show-summary': 'y e s' }, 'show-summary', 'use true or false'],
  [{ 'copy-signatures': '2' }, 'copy-signatures', 'use true or false'],
  [{ 'verify-signature': 'maybe' }, 'verify-signature', 'use true or false'],
  [{ 'insecure-registries': 'http://registry.local' }, 'insecure-registries', 'host or host:port'],
  [{ 'insecure-registries': 'registry.local/path' }, 'insecure-registries', 'host or host:port'],
  [{ 'insecure-registries': 'reg istry' }, 'insecure-registries', 'host or host:port'],
  [{ concurrency: '0' }, 'concurrency', 'from 1 to 64'],
  [{ concurrency: '1000' }, 'concurrency', 'from 1 to 64'],
  [{ concurrency: '2.5' }, 'concurrency', 'from 1 to 64'],
  [{ concurrency: 'eight' }, 'concurrency', 'from 1 to 64'],
  [{ 'deadline-seconds': '1' }, 'deadline-seconds', 'from 10 to 21600'],
  [{ 'deadline-seconds': '-5' }, 'deadline-seconds', 'from 10 to 21600'],
  [{ 'verify-signature': 'true', 'public-key': 'not a key, not a file' }, 'public-key', 'pass the contents of cosign.pub'],
  [{ 'verify-signature': 'true', 'public-key': notAKey }, 'public-key', '-----BEGIN PUBLIC KEY-----'],
  [{ 'verify-signature': 'true', 'public-key': '-----BEGIN PUBLIC KEY-----\nZZZZ\n-----END PUBLIC KEY-----' }, 'public-key', '-----BEGIN PUBLIC KEY-----'],
  [{ 'verify-signature': 'true', 'certificate-identity': 'a', 'certificate-identity-regexp': 'b' }, 'certificate-identity-regexp', 'set one of them'],
  [{ 'verify-signature': 'true', 'certificate-identity-regexp': '(unclosed' }, 'certificate-identity-regexp', 'not a valid regular expression'],
  [{ 'verify-signature': 'true', 'certificate-identity': 'x', 'signed-platforms': 'every' }, 'signed-platforms', 'not one of index, all'],
  [{ 'verify-signature': 'true', 'certificate-identity': 'x', 'trusted-root': join(dir, 'missing.json') }, 'trusted-root', 'cannot read a trusted_root.json'],
  [{ 'verify-signature': 'true', 'certificate-identity': 'x', 'trusted-root': '/dev/null/x' }, 'trusted-root', 'cannot read a trusted_root.json']
]

describe('every input refuses bad values with the input named and the fix given', () => {
  it(`has at least 50 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(50)
  })

  it.each(CASES)('%j is refused for input %s', (overrides, input, fix) => {
    const error = (() => {
      try {
        withInputs({ ...GOOD, ...overrides })()
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(error).toBeInstanceOf(PromoteError)
    expect((error as PromoteError).code).toBe('INPUT_INVALID')
    expect((error as PromoteError).message).toContain(`input "${input}"`)
    expect((error as PromoteError).message).toContain(fix)
  })

  it('a run with verification on and no policy says how to set one', () => {
    expect(withInputs({ ...GOOD, 'verify-signature': 'true' })).toThrow(/Set public-key \(cosign --key\), or certificate-identity/)
  })

  it('accepts the good baseline, so every refusal above is the one bad value', () => {
    expect(withInputs(GOOD)()).toMatchObject({ mode: 'promote', concurrency: 8, deadlineSeconds: 1800, copySignatures: true })
  })
})
