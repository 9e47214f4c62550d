// One signature manifest must not be able to exhaust memory: a `.att` tag listing the same 16 MiB DSSE blob four
// hundred times (a 64 KB manifest) and a `.sig` tag listing a 1 MiB payload as often, next to a valid signature.
// Run as the runner runs dist/index.js, with its peak resident memory read from /proc.
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { buildImage, sha256 } from '../scripts/lib/images.ts'
import { runAction } from '../scripts/lib/runner.ts'
import { pushImage, startRegistry, tagDigest, type RunningRegistry } from './support/registry.ts'
import { keyPairSigner, pushLegacyTag, signatureLayer, simpleSigningPayload, type Layer } from './support/sigstore.ts'

const COPIES = 400
const MIB = 1024 * 1024
let registry: RunningRegistry

beforeAll(async () => {
  registry = await startRegistry()
})
afterAll(async () => {
  await registry?.stop()
})

/** A DSSE envelope of exactly `size` bytes whose signature is junk. */
function largeEnvelope(size: number): Buffer {
  const head = '{"payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"","sig":"AAAA"}],"payload":"'
  const tail = '"}'
  return Buffer.from(head + 'A'.repeat(size - head.length - tail.length) + tail)
}

it(`a valid signature still counts beside ${COPIES} listings of one 16 MiB blob, and memory stays flat`, async () => {
  const image = buildImage()
  const repo = 'bounds/app'
  await pushImage(registry.url, repo, 'build', image)
  const key = await keyPairSigner()
  const envelope = largeEnvelope(16 * MIB)
  const att: Layer = {
    bytes: envelope,
    descriptor: {
      mediaType: 'application/vnd.dsse.envelope.v1+json',
      digest: sha256(envelope),
      size: envelope.length,
      annotations: { 'dev.cosignproject.cosign/signature': '', predicateType: 'https://slsa.dev/provenance/v1' }
    }
  }
  const junkPayload = Buffer.alloc(MIB, 'x')
  const junk: Layer = {
    bytes: junkPayload,
    descriptor: {
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      digest: sha256(junkPayload),
      size: junkPayload.length,
      annotations: { 'dev.cosignproject.cosign/signature': 'AAAA' }
    }
  }
  await pushLegacyTag(
    registry.url,
    repo,
    image.digest,
    'att',
    Array.from({ length: COPIES }, () => att)
  )
  await pushLegacyTag(registry.url, repo, image.digest, 'sig', [
    ...Array.from({ length: COPIES }, () => junk),
    signatureLayer(key, simpleSigningPayload(repo, image.digest))
  ])

  const run = await runAction({ image: `${registry.host}/${repo}:build`, to: 'prod', 'public-key': key.publicKeyPem })
  expect(run.stdout).not.toContain('::error::')
  expect(run.exitCode).toBe(0)
  expect(JSON.parse(run.outputs['verified']!)).toEqual([expect.objectContaining({ format: 'cosign-signature', subject: image.digest })])
  expect(await tagDigest(registry.url, repo, 'prod')).toBe(image.digest)
  console.log(`peak RSS with ${COPIES} × 16 MiB and ${COPIES} × 1 MiB listed: ${Math.round(run.peakRssKiB / 1024)} MiB`)
  expect(run.peakRssKiB).toBeGreaterThan(0)
  expect(run.peakRssKiB).toBeLessThan(300 * 1024)
})
