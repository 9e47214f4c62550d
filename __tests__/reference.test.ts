import { describe, expect, it } from '@jest/globals'
import { formatReference, parseDestination, parseReference, pinnedReference } from '../src/oci/reference.ts'

const DIGEST = `sha256:${'ab'.repeat(32)}`

describe('parseReference', () => {
  it.each([
    ['alpine', { kind: 'registry', registry: 'docker.io', repository: 'library/alpine' }],
    ['alpine:3.20', { kind: 'registry', registry: 'docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['acme/app:v1', { kind: 'registry', registry: 'docker.io', repository: 'acme/app', tag: 'v1' }],
    ['index.docker.io/acme/app', { kind: 'registry', registry: 'docker.io', repository: 'acme/app' }],
    ['ghcr.io/acme/app:build-42', { kind: 'registry', registry: 'ghcr.io', repository: 'acme/app', tag: 'build-42' }],
    [`ghcr.io/acme/app@${DIGEST}`, { kind: 'registry', registry: 'ghcr.io', repository: 'acme/app', digest: DIGEST }],
    [`ghcr.io/acme/app:rc@${DIGEST}`, { kind: 'registry', registry: 'ghcr.io', repository: 'acme/app', tag: 'rc', digest: DIGEST }],
    ['localhost:5000/app', { kind: 'registry', registry: 'localhost:5000', repository: 'app' }],
    ['localhost/app:x', { kind: 'registry', registry: 'localhost', repository: 'app', tag: 'x' }],
    ['[::1]:5000/a/b/c:t', { kind: 'registry', registry: '[::1]:5000', repository: 'a/b/c', tag: 't' }],
    [
      '123456789.dkr.ecr.eu-west-1.amazonaws.com/app:staging',
      { kind: 'registry', registry: '123456789.dkr.ecr.eu-west-1.amazonaws.com', repository: 'app', tag: 'staging' }
    ],
    ['REGISTRY.Example.com/app', { kind: 'registry', registry: 'registry.example.com', repository: 'app' }],
    ['oci:./layout', { kind: 'layout', path: './layout' }],
    ['oci:/tmp/x:dev', { kind: 'layout', path: '/tmp/x', tag: 'dev' }],
    [`oci:/tmp/x@${DIGEST}`, { kind: 'layout', path: '/tmp/x', digest: DIGEST }]
  ])('parses %s', (input, expected) => {
    expect(parseReference(input)).toEqual(expected)
  })

  it.each([
    ['', /is empty/],
    ['   ', /is empty/],
    ['Ghcr.io/Acme/App', /repository component "Acme"/],
    ['ghcr.io/acme/app:', /"" is not a valid tag/],
    ['ghcr.io/acme/app:-bad', /not a valid tag/],
    [`ghcr.io/acme/app:${'t'.repeat(129)}`, /not a valid tag/],
    ['ghcr.io/acme/app@sha256:abc', /not a sha256 digest/],
    [`ghcr.io/acme/app@sha512:${'a'.repeat(128)}`, /not a sha256 digest/],
    [`ghcr.io/acme/app@sha256:${'A'.repeat(64)}`, /not a sha256 digest/],
    ['ghcr.io/acme//app', /repository component ""/],
    ['ghcr.io/acme/app/', /repository component ""/],
    ['ghcr.io/ac me/app', /white space/],
    ['-bad-.io/app', /not a valid registry host/],
    ['ghcr.io/a..b', /repository component "a..b"/],
    ['oci:', /layout path is empty/],
    ['oci::tag', /layout path is empty/],
    [`ghcr.io/${'a'.repeat(250)}`, /longer than 255/]
  ])('rejects %j with an explanation', (input, why) => {
    expect(() => parseReference(input)).toThrow(why)
    expect(() => parseReference(input)).toThrow(/Expected host\/repository:tag/)
  })
})

describe('parseDestination', () => {
  const source = parseReference('ghcr.io/acme/app:build-42')

  it('reads a bare tag as a tag of the source repository', () => {
    expect(parseDestination('staging', source)).toEqual({ kind: 'registry', registry: 'ghcr.io', repository: 'acme/app', tag: 'staging' })
  })

  it('reads a full reference, and a repository alone as copy-by-digest', () => {
    expect(formatReference(parseDestination('123.dkr.ecr.eu-west-1.amazonaws.com/app:prod', source))).toBe('123.dkr.ecr.eu-west-1.amazonaws.com/app:prod')
    expect(parseDestination('quay.io/acme/app', source)).toEqual({ kind: 'registry', registry: 'quay.io', repository: 'acme/app' })
    expect(parseDestination('oci:/mirror:prod', source)).toEqual({ kind: 'layout', path: '/mirror', tag: 'prod' })
  })

  it('keeps a layout source bare tag in the layout', () => {
    expect(parseDestination('prod', parseReference('oci:/tmp/l:dev'))).toEqual({ kind: 'layout', path: '/tmp/l', tag: 'prod' })
  })

  it('refuses a digest destination and a malformed tag', () => {
    expect(() => parseDestination(`ghcr.io/acme/app@${DIGEST}`, source)).toThrow(/takes a tag or nothing, not a digest/)
    expect(() => parseDestination('.hidden', source)).toThrow(/not a valid tag/)
  })
})

it('pins a reference to its digest, dropping the tag', () => {
  expect(pinnedReference(parseReference('ghcr.io/acme/app:v1'), DIGEST)).toBe(`ghcr.io/acme/app@${DIGEST}`)
  expect(pinnedReference(parseReference('alpine'), DIGEST)).toBe(`docker.io/library/alpine@${DIGEST}`)
})
