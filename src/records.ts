import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { Readable } from 'node:stream'
import { PromoteError, errorMessage } from './errors.js'
import { SHA256_DIGEST, sha256Digest } from './oci/digest.js'
import { toManifest, type Descriptor, type Manifest } from './oci/manifest.js'
import { OCI_MANIFEST } from './oci/media-types.js'
import { ReferrerIndex } from './oci/referrers.js'
import type { Repository } from './oci/repository.js'
import { keyId } from './verify/key-id.js'
import type { VerifiedSignature } from './verify/index.js'

/**
 * The predicate type of oci-promote's promotion records: an in-toto statement
 * about the promoted digest saying which environment it entered, from where,
 * what it replaced, what verification allowed it and which workflow run did it.
 */
export const PROMOTION_PREDICATE_TYPE = 'https://oci-promote.dev/promotion/v1'

/** The annotation cosign v3 and actions/attest put on a bundle referrer, naming its predicate type. */
export const PREDICATE_TYPE_ANNOTATION = 'dev.sigstore.bundle.predicateType'
const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json'
const EMPTY_CONFIG = Buffer.from('{}')
const EMPTY_CONFIG_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json'

export interface WorkflowRun {
  readonly repository?: string
  readonly workflowRef?: string
  readonly commit?: string
  readonly runId?: string
  readonly runAttempt?: string
  readonly actor?: string
}

export interface RecordedDestination {
  readonly reference: string
  readonly previousDigest: string | null
  readonly status: string
  /**
   * Rollback records only: the `promotedAt` of the promotion that first put
   * this digest at the destination, before the one just undone. The next
   * rollback continues from it, so rollbacks walk back through history.
   */
  readonly restores?: string
}

export interface PromotionPredicate {
  readonly environment: string
  /** `rollback` when a tag was moved back to the digest it held before. */
  readonly action: 'promote' | 'rollback'
  readonly source: string
  readonly digest: string
  readonly destinations: readonly RecordedDestination[]
  readonly verification: readonly { format: string; identity?: string; keyId?: string; issuer?: string; predicateType?: string }[]
  readonly workflow: WorkflowRun
  readonly promotedAt: string
}

/** A verified promotion record and what it says, checked field by field. */
export interface PromotionRecord {
  /** Who signed it, and how it verified. */
  readonly signature: VerifiedSignature
  readonly predicate: PromotionPredicate
}

const isString = (value: unknown): value is string => typeof value === 'string'

function readDestination(value: unknown): RecordedDestination | undefined {
  const d = value as Partial<Record<keyof RecordedDestination, unknown>> | null
  if (typeof d !== 'object' || d === null || !isString(d.reference) || !isString(d.status)) return undefined
  if (d.previousDigest !== null && !(isString(d.previousDigest) && SHA256_DIGEST.test(d.previousDigest))) return undefined
  if (d.restores !== undefined && !isString(d.restores)) return undefined
  return { reference: d.reference, previousDigest: d.previousDigest, status: d.status, ...(d.restores !== undefined ? { restores: d.restores } : {}) }
}

/**
 * The one reader of promotion records: the verified signature's predicate,
 * read as this module writes it. A record signed by a trusted identity is
 * still data; one that is not well-formed (a previousDigest that is no
 * digest, a destination without a reference) is no record at all.
 */
export function readPromotionRecord(signature: VerifiedSignature): PromotionRecord | undefined {
  if (signature.predicateType !== PROMOTION_PREDICATE_TYPE) return undefined
  const p = signature.predicate as Partial<Record<keyof PromotionPredicate, unknown>> | null | undefined
  if (typeof p !== 'object' || p === null || !isString(p.environment) || !isString(p.digest) || !SHA256_DIGEST.test(p.digest) || !isString(p.promotedAt))
    return undefined
  if (!Array.isArray(p.destinations)) return undefined
  const destinations = p.destinations.map(readDestination)
  if (destinations.some((d) => d === undefined)) return undefined
  const workflow = typeof p.workflow === 'object' && p.workflow !== null ? Object.fromEntries(Object.entries(p.workflow).filter(([, v]) => isString(v))) : {}
  return {
    signature,
    predicate: {
      environment: p.environment,
      action: p.action === 'rollback' ? 'rollback' : 'promote',
      source: isString(p.source) ? p.source : '',
      digest: p.digest,
      destinations: destinations as RecordedDestination[],
      verification: Array.isArray(p.verification) ? (p.verification as PromotionPredicate['verification']) : [],
      workflow: workflow,
      promotedAt: p.promotedAt
    }
  }
}

export function promotionStatement(repositoryName: string, predicate: PromotionPredicate): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: repositoryName, digest: { sha256: predicate.digest.slice('sha256:'.length) } }],
      predicateType: PROMOTION_PREDICATE_TYPE,
      predicate
    })
  )
}

export function verificationSummary(verified: readonly VerifiedSignature[]): PromotionPredicate['verification'] {
  return verified.map((v) => ({
    format: v.format,
    ...(v.identity ? { identity: v.identity } : {}),
    ...(v.keyId ? { keyId: v.keyId } : {}),
    ...(v.issuer ? { issuer: v.issuer } : {}),
    ...(v.predicateType ? { predicateType: v.predicateType } : {})
  }))
}

/**
 * The exports of a dynamically imported CommonJS package. Bundled by esbuild,
 * its named exports are reliably present only on the default export.
 */
function commonJs<T>(module: T): T {
  return (module as { default?: T }).default ?? module
}

/** Signs a statement into a serialized Sigstore bundle. */
export interface RecordSigner {
  readonly description: string
  sign(statement: Buffer): Promise<object>
}

/** A PEM private key (ECDSA or Ed25519), for Sigstore-less setups and offline tests: a DSSE bundle with a key hint. */
export async function keyRecordSigner(privateKeyPem: string): Promise<RecordSigner> {
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(privateKeyPem)
  } catch (error) {
    throw new PromoteError('INPUT_INVALID', `input "signing-key": not a PEM private key (${errorMessage(error)})`)
  }
  const hint = keyId(createPublicKey(privateKey))
  // Built directly rather than through @sigstore/sign: a key signature needs no Fulcio, Rekor or HTTP client.
  const { toDSSEBundle, bundleToJSON } = commonJs(await import('@sigstore/bundle'))
  const { dsse } = commonJs(await import('@sigstore/core'))
  return {
    description: `key ${hint.slice(0, 19)}…`,
    sign: async (statement) => {
      const payloadType = 'application/vnd.in-toto+json'
      // Ed25519 signs the message itself; ECDSA and RSA keys sign its SHA-256.
      const signature = cryptoSign(privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256', dsse.preAuthEncoding(payloadType, statement), privateKey)
      return bundleToJSON(toDSSEBundle({ artifact: statement, artifactType: payloadType, signature, keyHint: hint }))
    }
  }
}

/**
 * Keyless, with the job's GitHub OIDC token through Fulcio and Rekor, as
 * actions/attest signs (needs `permissions: id-token: write`).
 */
export async function keylessRecordSigner(endpoints: { fulcioURL?: string; rekorURL?: string } = {}): Promise<RecordSigner> {
  if (!process.env['ACTIONS_ID_TOKEN_REQUEST_URL']) {
    throw new PromoteError(
      'INPUT_INVALID',
      'input "attest-promotion": signing keyless needs the job\'s OIDC token, and the "id-token" permission is missing. Add "permissions: id-token: write" to the job, or set signing-key'
    )
  }
  const { DSSEBundleBuilder, FulcioSigner, RekorWitness, CIContextProvider, DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL } = commonJs(await import('@sigstore/sign'))
  const { bundleToJSON } = commonJs(await import('@sigstore/bundle'))
  const builder = new DSSEBundleBuilder({
    signer: new FulcioSigner({ identityProvider: new CIContextProvider('sigstore'), fulcioBaseURL: endpoints.fulcioURL ?? DEFAULT_FULCIO_URL }),
    witnesses: [new RekorWitness({ rekorBaseURL: endpoints.rekorURL ?? DEFAULT_REKOR_URL, fetchOnConflict: true })]
  })
  return {
    description: endpoints.fulcioURL ? `keyless (GitHub OIDC, Fulcio ${endpoints.fulcioURL})` : 'keyless (GitHub OIDC, Sigstore public-good)',
    sign: async (statement) => {
      try {
        return bundleToJSON(await builder.create({ data: statement, type: 'application/vnd.in-toto+json' }))
      } catch (error) {
        throw new PromoteError(
          'NETWORK',
          `signing the promotion record keyless failed (${errorMessage(error)}); nothing was promoted. Check the id-token permission and access to Fulcio and Rekor, or set signing-key`,
          { cause: error }
        )
      }
    }
  }
}

/**
 * Attaches a bundle to `subject` in a repository as an OCI 1.1 referrer, the
 * way cosign v3 and actions/attest do: blobs, the referrer manifest, and the
 * fallback index where the repository has no referrers API.
 */
export async function attachBundle(repository: Repository, subject: Manifest, bundle: object, predicateType: string): Promise<string> {
  const bundleBytes = Buffer.from(JSON.stringify(bundle))
  const blobs: [Descriptor, Buffer][] = [
    [{ mediaType: EMPTY_CONFIG_MEDIA_TYPE, digest: sha256Digest(EMPTY_CONFIG), size: EMPTY_CONFIG.length }, EMPTY_CONFIG],
    [{ mediaType: BUNDLE_MEDIA_TYPE, digest: sha256Digest(bundleBytes), size: bundleBytes.length }, bundleBytes]
  ]
  for (const [descriptor, bytes] of blobs) {
    if (!(await repository.hasBlob(descriptor))) await repository.writeBlob(descriptor, async () => Readable.from([bytes]))
  }
  const annotations = { 'dev.sigstore.bundle.content': 'dsse-envelope', [PREDICATE_TYPE_ANNOTATION]: predicateType }
  const manifest = toManifest(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: BUNDLE_MEDIA_TYPE,
        config: blobs[0]![0],
        layers: [blobs[1]![0]],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
        annotations
      })
    ),
    OCI_MANIFEST,
    'promotion record'
  )
  const ociSubject = await repository.putManifest(manifest.digest, manifest)
  await new ReferrerIndex(repository).add(
    subject.digest,
    {
      mediaType: OCI_MANIFEST,
      digest: manifest.digest,
      size: manifest.bytes.length,
      artifactType: BUNDLE_MEDIA_TYPE,
      annotations
    },
    ociSubject
  )
  return manifest.digest
}
