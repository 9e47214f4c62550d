// What `cosign sign --key` writes for a digest when no transparency log is used (--tlog-upload=false): a
// simple-signing payload signed with the key, stored as the one layer of the `sha256-<hex>.sig` image.
// https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
// Plain TypeScript that Node 24 runs directly (type stripping): the demo and the tests sign with it.
import { sign, type KeyObject } from 'node:crypto'
import { sha256, type Image } from './images.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

/** cosign's simple-signing payload for a digest. */
export function simpleSigningPayload(repository: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': repository }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null
    })
  )
}

/** The `.sig` image signing `digest` with `privateKey`; write it under the tag `sha256-<hex>.sig`. */
export function cosignSignatureImage(privateKey: KeyObject, repository: string, digest: string): Image {
  const payload = simpleSigningPayload(repository, digest)
  const signature = sign('sha256', payload, privateKey).toString('base64')
  const config = Buffer.from(JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(payload)] } }))
  const layer = { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha256(payload), size: payload.length, bytes: payload }
  const configBlob = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length, bytes: config }
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, annotations: { 'dev.cosignproject.cosign/signature': signature } }]
    })
  )
  return { mediaType: OCI_MANIFEST, digest: sha256(bytes), bytes, blobs: [configBlob, layer], children: [] }
}

/** cosign's tag for the signatures of a digest. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`
}
