import type { Bundle } from '@sigstore/bundle'
import { BUNDLE_V01_MEDIA_TYPE } from '@sigstore/bundle'
import { pem } from '@sigstore/core'
import { HashAlgorithm } from '@sigstore/protobuf-specs'
import type { Descriptor } from '../oci/manifest.js'

// Layer media types and annotation keys of cosign's legacy tags:
// https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md (pkg/oci/static/signature.go)
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const DSSE_ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json'
export const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature'
export const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate'
export const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain'
export const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle'
export const ANNOTATION_TIMESTAMP = 'dev.sigstore.cosign/rfc3161timestamp'

export const SIMPLE_SIGNING_TYPE = 'cosign container image signature'

interface RekorBundleAnnotation {
  SignedEntryTimestamp: string
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string }
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw new Error(`${what} is missing`)
  return value
}

/**
 * The verification material of a legacy layer as a v0.1 bundle would carry it:
 * the certificate (or a key hint), the Rekor SET as an inclusion promise, and
 * any RFC 3161 timestamp. The chain annotation is not used: trust comes from
 * the trusted root alone.
 */
function verificationMaterial(annotations: Readonly<Record<string, string>>): Bundle['verificationMaterial'] {
  const certificate = annotations[ANNOTATION_CERTIFICATE]
  const tlogEntries: Bundle['verificationMaterial']['tlogEntries'] = []
  const rekor = annotations[ANNOTATION_BUNDLE]
  if (rekor) {
    const parsed = JSON.parse(rekor) as RekorBundleAnnotation
    const body = Buffer.from(requireString(parsed.Payload?.body, 'the Rekor bundle body'), 'base64')
    const entry = JSON.parse(body.toString('utf8')) as { kind?: string; apiVersion?: string }
    tlogEntries.push({
      logIndex: String(parsed.Payload.logIndex),
      logId: { keyId: Buffer.from(requireString(parsed.Payload.logID, 'the Rekor log ID'), 'hex') },
      kindVersion: { kind: requireString(entry.kind, 'the Rekor entry kind'), version: requireString(entry.apiVersion, 'the Rekor entry version') },
      integratedTime: String(parsed.Payload.integratedTime),
      inclusionPromise: { signedEntryTimestamp: Buffer.from(requireString(parsed.SignedEntryTimestamp, 'the Rekor SET'), 'base64') },
      inclusionProof: undefined,
      canonicalizedBody: body
    })
  }
  const rfc3161Timestamps: { signedTimestamp: Buffer }[] = []
  const timestamp = annotations[ANNOTATION_TIMESTAMP]
  if (timestamp) {
    const parsed = JSON.parse(timestamp) as { SignedRFC3161Timestamp?: string }
    rfc3161Timestamps.push({ signedTimestamp: Buffer.from(requireString(parsed.SignedRFC3161Timestamp, 'the RFC 3161 timestamp'), 'base64') })
  }
  return {
    content: certificate
      ? { $case: 'x509CertificateChain', x509CertificateChain: { certificates: [{ rawBytes: pem.toDER(certificate) }] } }
      : { $case: 'publicKey', publicKey: { hint: '' } },
    tlogEntries,
    timestampVerificationData: { rfc3161Timestamps }
  }
}

/** A `.sig` layer (simple-signing payload + annotations) as an equivalent v0.1 message-signature bundle. */
export function legacySignatureBundle(layer: Descriptor): Bundle {
  const annotations = layer.annotations ?? {}
  return {
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: verificationMaterial(annotations),
    content: {
      $case: 'messageSignature',
      messageSignature: {
        messageDigest: { algorithm: HashAlgorithm.SHA2_256, digest: Buffer.from(layer.digest.slice('sha256:'.length), 'hex') },
        signature: Buffer.from(requireString(annotations[ANNOTATION_SIGNATURE], `annotation ${ANNOTATION_SIGNATURE}`), 'base64')
      }
    }
  }
}

/** An `.att` layer (a DSSE envelope blob + annotations) as an equivalent v0.1 DSSE bundle. */
export function legacyAttestationBundle(layer: Descriptor, envelopeBytes: Buffer): Bundle {
  const envelope = JSON.parse(envelopeBytes.toString('utf8')) as { payloadType?: string; payload?: string; signatures?: { keyid?: string; sig?: string }[] }
  const signatures = envelope.signatures ?? []
  if (signatures.length === 0) throw new Error('the DSSE envelope has no signatures')
  return {
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: verificationMaterial(layer.annotations ?? {}),
    content: {
      $case: 'dsseEnvelope',
      dsseEnvelope: {
        payloadType: requireString(envelope.payloadType, 'the DSSE payloadType'),
        payload: Buffer.from(requireString(envelope.payload, 'the DSSE payload'), 'base64'),
        signatures: signatures.map((s) => ({ keyid: s.keyid ?? '', sig: Buffer.from(requireString(s.sig, 'a DSSE signature'), 'base64') }))
      }
    }
  }
}
