// Offline Sigstore trust material and a small signer that writes what cosign
// and actions/attest write: a test Fulcio-style CA issuing short-lived leaf
// certificates with Fulcio extensions, a test Rekor log key producing SETs and
// checkpoints, a matching trusted_root.json, and cosign key pairs.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { createHash, createPrivateKey, createPublicKey, sign, webcrypto, type KeyObject } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { json } from '@sigstore/core'
import { contentOf, sha256, type Image } from '../../scripts/lib/images.ts'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const ECDSA_P384 = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const
export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com'
const REKOR_ORIGIN = 'rekor.oci-promote.test'

export interface Signer {
  readonly privateKey: KeyObject
  /** PEM of the certificate (keyless) or of the public key (key-based). */
  readonly verifierPem: string
  readonly certificate?: { readonly pem: string; readonly der: Buffer }
  readonly publicKeyPem: string
}

async function toNodeKeys(pair: webcrypto.CryptoKeyPair): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey))
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
  return { privateKey, publicKey: createPublicKey(privateKey) }
}

/** A DER UTF8String; `latin1` writes one byte per character, as a careless private CA might. */
function derUtf8String(value: string, encoding: 'utf8' | 'latin1' = 'utf8'): ArrayBuffer {
  const bytes = Buffer.from(value, encoding)
  const length = bytes.length < 128 ? Buffer.from([bytes.length]) : Buffer.from([0x81, bytes.length])
  const der = Buffer.concat([Buffer.from([0x0c]), length, bytes])
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.length)
}

export async function keyPairSigner(): Promise<Signer> {
  const keys = await toNodeKeys(await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']))
  const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  return { privateKey: keys.privateKey, verifierPem: publicKeyPem, publicKeyPem }
}

export interface IssueOptions {
  issuer?: string
  /** How the issuer extension's string is written (the SAN is always one byte per character, as @peculiar/x509 writes IA5String). */
  issuerEncoding?: 'utf8' | 'latin1'
  notBefore?: Date
  minutes?: number
  /** More Fulcio extensions, OID → value, written as DER UTF8String as Fulcio writes its v2 extensions (GitHub claims). */
  extensions?: Record<string, string>
}

export class TestCA {
  private constructor(
    readonly certificate: x509.X509Certificate,
    private readonly keys: webcrypto.CryptoKeyPair,
    readonly name: string
  ) {}

  static async create(name = 'oci-promote test fulcio'): Promise<TestCA> {
    const keys = await webcrypto.subtle.generateKey(ECDSA_P384, true, ['sign', 'verify'])
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: `CN=${name}, O=oci-promote.test`,
      notBefore: new Date(Date.now() - 365 * 86400_000),
      notAfter: new Date(Date.now() + 10 * 365 * 86400_000),
      signingAlgorithm: ECDSA_P384,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
      ]
    })
    return new TestCA(certificate, keys, name)
  }

  /** A Fulcio-style leaf: SAN URI identity, issuer in 1.3.6.1.4.1.57264.1.8, valid ten minutes from `notBefore`. */
  async issue(identity: string, options: IssueOptions = {}): Promise<Signer> {
    const pair = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])
    const { pem, der } = await this.certify(pair.publicKey, identity, options)
    const keys = await toNodeKeys(pair)
    return {
      privateKey: keys.privateKey,
      verifierPem: pem,
      certificate: { pem, der },
      publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString()
    }
  }

  /** A leaf for someone else's public key (SPKI PEM), as Fulcio answers a signing-certificate request. */
  async certifyPem(publicKeyPem: string, identity: string, extensions: Record<string, string> = {}): Promise<string> {
    const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })
    const key = await webcrypto.subtle.importKey('spki', der, ECDSA_P256, true, ['verify'])
    return (await this.certify(key, identity, { extensions })).pem
  }

  private async certify(publicKey: webcrypto.CryptoKey, identity: string, options: IssueOptions = {}): Promise<{ pem: string; der: Buffer }> {
    const notBefore = options.notBefore ?? new Date(Date.now() - 60_000)
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
      subject: '',
      issuer: this.certificate.subject,
      notBefore,
      notAfter: new Date(notBefore.getTime() + (options.minutes ?? 10) * 60_000),
      signingAlgorithm: ECDSA_P384,
      publicKey,
      signingKey: this.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }], true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
        new x509.Extension('1.3.6.1.4.1.57264.1.8', false, derUtf8String(options.issuer ?? GITHUB_ISSUER, options.issuerEncoding)),
        ...Object.entries(options.extensions ?? {}).map(([oid, value]) => new x509.Extension(oid, false, derUtf8String(value)))
      ]
    })
    return { pem: certificate.toString('pem'), der: Buffer.from(certificate.rawData) }
  }
}

export interface LogEntry {
  readonly logIndex: number
  readonly logId: Buffer
  readonly integratedTime: number
  readonly body: Buffer
  readonly set: Buffer
  readonly checkpoint: string
  readonly rootHash: Buffer
}

export class TestRekor {
  #index = 1000
  private constructor(
    readonly privateKey: KeyObject,
    readonly publicKeyDer: Buffer
  ) {}

  static async create(): Promise<TestRekor> {
    const keys = await toNodeKeys(await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']))
    return new TestRekor(keys.privateKey, keys.publicKey.export({ type: 'spki', format: 'der' }))
  }

  get logId(): Buffer {
    return createHash('sha256').update(this.publicKeyDer).digest()
  }

  /** Logs a canonicalized body: the SET over {body, integratedTime, logIndex, logID}, and a one-leaf checkpoint. */
  log(bodyObject: object, integratedTime = Math.floor(Date.now() / 1000)): LogEntry {
    const body = Buffer.from(json.canonicalize(bodyObject))
    const logIndex = this.#index++
    const logId = this.logId
    const payload = { body: body.toString('base64'), integratedTime, logIndex, logID: logId.toString('hex') }
    const set = sign('sha256', Buffer.from(json.canonicalize(payload)), this.privateKey)
    const rootHash = createHash('sha256')
      .update(Buffer.concat([Buffer.from([0]), body]))
      .digest()
    const note = `${REKOR_ORIGIN}\n1\n${rootHash.toString('base64')}\n`
    const signature = sign('sha256', Buffer.from(note), this.privateKey)
    const checkpoint = `${note}\n\u2014 ${REKOR_ORIGIN} ${Buffer.concat([logId.subarray(0, 4), signature]).toString('base64')}\n`
    return { logIndex, logId, integratedTime, body, set, checkpoint, rootHash }
  }
}

export function trustedRootJson(options: { ca?: TestCA; rekor?: TestRekor }): object {
  const start = new Date(Date.now() - 365 * 86400_000).toISOString()
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: options.rekor
      ? [
          {
            baseUrl: `https://${REKOR_ORIGIN}`,
            hashAlgorithm: 'SHA2_256',
            publicKey: { rawBytes: options.rekor.publicKeyDer.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
            logId: { keyId: options.rekor.logId.toString('base64') }
          }
        ]
      : [],
    certificateAuthorities: options.ca
      ? [
          {
            subject: { organization: 'oci-promote.test', commonName: options.ca.name },
            uri: 'https://fulcio.oci-promote.test',
            certChain: { certificates: [{ rawBytes: Buffer.from(options.ca.certificate.rawData).toString('base64') }] },
            validFor: { start }
          }
        ]
      : [],
    ctlogs: [],
    timestampAuthorities: []
  }
}

export { simpleSigningPayload } from '../../scripts/lib/cosign.ts'

export function inTotoStatement(digest: string, predicateType: string, name = 'image'): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name, digest: { sha256: digest.slice(7) } }],
      predicateType,
      predicate: { builder: { id: 'oci-promote tests' } }
    })
  )
}

function pae(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `), payload])
}

export interface Layer {
  readonly descriptor: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }
  readonly bytes: Buffer
}

function rekorBundleAnnotation(entry: LogEntry): string {
  return JSON.stringify({
    SignedEntryTimestamp: entry.set.toString('base64'),
    Payload: { body: entry.body.toString('base64'), integratedTime: entry.integratedTime, logIndex: entry.logIndex, logID: entry.logId.toString('hex') }
  })
}

/**
 * A cosign `.sig` layer: simple-signing payload, signature annotation, certificate and Rekor bundle when given.
 * `loggedAs` names another key in the log entry's body (an entry that is not this signer's).
 */
export function signatureLayer(signer: Signer, payload: Buffer, rekor?: TestRekor, integratedTime?: number, loggedAs: Signer = signer): Layer {
  const signature = sign('sha256', payload, signer.privateKey)
  const annotations: Record<string, string> = { 'dev.cosignproject.cosign/signature': signature.toString('base64') }
  if (signer.certificate) annotations['dev.sigstore.cosign/certificate'] = signer.certificate.pem
  if (rekor) {
    const entry = rekor.log(
      {
        apiVersion: '0.0.1',
        kind: 'hashedrekord',
        spec: {
          data: { hash: { algorithm: 'sha256', value: sha256(payload).slice(7) } },
          signature: { content: signature.toString('base64'), publicKey: { content: Buffer.from(loggedAs.verifierPem).toString('base64') } }
        }
      },
      integratedTime
    )
    annotations['dev.sigstore.cosign/bundle'] = rekorBundleAnnotation(entry)
  }
  return {
    descriptor: { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha256(payload), size: payload.length, annotations },
    bytes: payload
  }
}

interface SignedEnvelope {
  readonly envelope: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] }
  readonly entry?: LogEntry
}

function signEnvelope(signer: Signer, statement: Buffer, rekor?: TestRekor, integratedTime?: number): SignedEnvelope {
  const payloadType = 'application/vnd.in-toto+json'
  const signature = sign('sha256', pae(payloadType, statement), signer.privateKey)
  const envelope = { payloadType, payload: statement.toString('base64'), signatures: [{ keyid: '', sig: signature.toString('base64') }] }
  const entry = rekor?.log(
    {
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(JSON.stringify(envelope))).slice(7) },
        payloadHash: { algorithm: 'sha256', value: sha256(statement).slice(7) },
        signatures: [{ signature: signature.toString('base64'), verifier: Buffer.from(signer.verifierPem).toString('base64') }]
      }
    },
    integratedTime
  )
  return { envelope, ...(entry ? { entry } : {}) }
}

/** A cosign `.att` layer: a DSSE envelope blob with certificate and Rekor bundle annotations. */
export function attestationLayer(signer: Signer, statement: Buffer, predicateType: string, rekor?: TestRekor): Layer {
  const { envelope, entry } = signEnvelope(signer, statement, rekor)
  const bytes = Buffer.from(JSON.stringify(envelope))
  const annotations: Record<string, string> = { 'dev.cosignproject.cosign/signature': '', predicateType }
  if (signer.certificate) annotations['dev.sigstore.cosign/certificate'] = signer.certificate.pem
  if (entry) annotations['dev.sigstore.cosign/bundle'] = rekorBundleAnnotation(entry)
  return { descriptor: { mediaType: 'application/vnd.dsse.envelope.v1+json', digest: sha256(bytes), size: bytes.length, annotations }, bytes }
}

/** A Sigstore bundle v0.3 with a DSSE envelope, as cosign v3 and actions/attest write them. */
export function dsseBundle(signer: Signer, statement: Buffer, rekor?: TestRekor, integratedTime?: number): object {
  const { envelope, entry } = signEnvelope(signer, statement, rekor, integratedTime)
  return {
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      ...(signer.certificate ? { certificate: { rawBytes: signer.certificate.der.toString('base64') } } : { publicKey: { hint: '' } }),
      tlogEntries: entry
        ? [
            {
              logIndex: String(entry.logIndex),
              logId: { keyId: entry.logId.toString('base64') },
              kindVersion: { kind: 'dsse', version: '0.0.1' },
              integratedTime: String(entry.integratedTime),
              inclusionPromise: { signedEntryTimestamp: entry.set.toString('base64') },
              inclusionProof: {
                logIndex: '0',
                rootHash: entry.rootHash.toString('base64'),
                treeSize: '1',
                hashes: [],
                checkpoint: { envelope: entry.checkpoint }
              },
              canonicalizedBody: entry.body.toString('base64')
            }
          ]
        : [],
      timestampVerificationData: {}
    },
    dsseEnvelope: envelope
  }
}

const EMPTY_CONFIG = Buffer.from('{}')

async function putBlob(registryUrl: string, repository: string, bytes: Buffer): Promise<void> {
  const start = await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' })
  const location = new URL(start.headers.get('location')!, registryUrl)
  location.searchParams.set('digest', sha256(bytes))
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes })
  if (put.status !== 201) throw new Error(`seeding blob: ${put.status} ${await put.text()}`)
}

async function putManifest(registryUrl: string, repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
  const put = await fetch(`${registryUrl}/v2/${repository}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes })
  if (put.status !== 201) throw new Error(`seeding manifest ${reference}: ${put.status} ${await put.text()}`)
}

/** Writes cosign's legacy `sha256-<hex>.<suffix>` tag with the given layers, as cosign 2 does. */
export async function pushLegacyTag(
  registryUrl: string,
  repository: string,
  digest: string,
  suffix: 'sig' | 'att' | 'sbom',
  layers: readonly Layer[]
): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.descriptor.digest) } })
  )
  const blobs = new Map([config, ...layers.map((l) => l.bytes)].map((bytes) => [sha256(bytes), bytes]))
  for (const bytes of blobs.values()) await putBlob(registryUrl, repository, bytes)
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => l.descriptor)
    })
  )
  await putManifest(registryUrl, repository, `${digest.replace(':', '-')}.${suffix}`, 'application/vnd.oci.image.manifest.v1+json', manifest)
}

/**
 * Attaches a Sigstore bundle as an OCI 1.1 referrer the way cosign v3 and
 * actions/attest do on a registry without the referrers API: the referrer
 * manifest, then the `sha256-<hex>` fallback index listing it.
 */
export async function pushBundleReferrer(
  registryUrl: string,
  repository: string,
  subject: Image,
  bundle: object,
  predicateType: string,
  layerMediaType?: string
): Promise<string> {
  const bundleBytes = Buffer.from(JSON.stringify(bundle))
  const artifactType = 'application/vnd.dev.sigstore.bundle.v0.3+json'
  await putBlob(registryUrl, repository, EMPTY_CONFIG)
  await putBlob(registryUrl, repository, bundleBytes)
  const annotations = { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': predicateType }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(EMPTY_CONFIG), size: 2 },
      layers: [{ mediaType: layerMediaType ?? artifactType, digest: sha256(bundleBytes), size: bundleBytes.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
      annotations
    })
  )
  const digest = sha256(manifest)
  await putManifest(registryUrl, repository, digest, 'application/vnd.oci.image.manifest.v1+json', manifest)
  const tag = subject.digest.replace(':', '-')
  const existing = await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })
  const index = existing.status === 200 ? ((await existing.json()) as { manifests: object[] }) : { manifests: [] }
  index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length, artifactType, annotations })
  await putManifest(
    registryUrl,
    repository,
    tag,
    'application/vnd.oci.image.index.v1+json',
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index.manifests }))
  )
  return digest
}

export { contentOf }

/**
 * The public-good trusted_root.json that @sigstore/tuf embeds in its seeds, written to a file the trusted-root input
 * (and TrustRoot) can read: real public signatures verify against it offline.
 */
export function publicGoodRoot(): string {
  const seeds = createRequire(import.meta.url)('@sigstore/tuf/seeds.json') as Record<string, { targets: Record<string, string> }>
  const path = join(mkdtempSync(join(tmpdir(), 'oci-promote-pgi-')), 'trusted_root.json')
  writeFileSync(path, Buffer.from(seeds['https://tuf-repo-cdn.sigstore.dev']!.targets['trusted_root.json']!, 'base64'))
  return path
}

/** A test Fulcio CA and Rekor log, and a trusted_root.json naming both: what a keyless test signs and verifies with. */
export async function keylessTrust(): Promise<{ ca: TestCA; rekor: TestRekor; root: string }> {
  const [ca, rekor] = await Promise.all([TestCA.create(), TestRekor.create()])
  const root = join(mkdtempSync(join(tmpdir(), 'oci-promote-trust-')), 'trusted_root.json')
  writeFileSync(root, JSON.stringify(trustedRootJson({ ca, rekor })))
  return { ca, rekor, root }
}
