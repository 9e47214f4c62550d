import { X509Certificate as NodeX509Certificate, createPublicKey, type KeyObject } from 'node:crypto'
import type { Bundle } from '@sigstore/bundle'
import { X509Certificate, type ASN1Obj } from '@sigstore/core'
import type { TrustedRoot } from '@sigstore/protobuf-specs'
import { untrusted } from '../untrusted.js'
import type { CertificateClaim } from './policy.js'

/**
 * Checks of a bundle's verification material that @sigstore/verify leaves
 * out: what a certificate's identity really says, what its chain may hold,
 * and which key its transparency-log entry names.
 */

// Fulcio's OIDC issuer extensions: https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md
const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1'
const OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8'
// GeneralName tags that @sigstore/core reads an identity from: otherName, rfc822Name, dNSName, URI.
const IDENTITY_NAME_TAGS = [0, 1, 2, 6]

/** The leaf certificate of a keyless bundle; undefined for a key-signed one. */
export function leafCertificate(bundle: Bundle): X509Certificate | undefined {
  const content = bundle.verificationMaterial.content
  const der =
    content.$case === 'certificate'
      ? content.certificate.rawBytes
      : content.$case === 'x509CertificateChain'
        ? content.x509CertificateChain.certificates[0]?.rawBytes
        : undefined
  return der ? X509Certificate.parse(Buffer.from(der)) : undefined
}

function isPrintableAscii(bytes: Buffer): boolean {
  return bytes.every((b) => b >= 0x20 && b <= 0x7e)
}

/** The bytes as they are: printable ASCII as itself, every other byte as \xHH, never a decoded guess. */
function showBytes(bytes: Buffer): string {
  return untrusted([...bytes].map((b) => (b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join(''))
}

function requirePrintable(bytes: Buffer, what: string): void {
  if (!isPrintableAscii(bytes))
    throw new Error(
      `its certificate's ${what} is not plain printable ASCII: "${showBytes(bytes)}"; refused before matching, since a lossy decoding could make it look like a trusted one`
    )
}

/**
 * @sigstore/core decodes SAN and issuer bytes as `ascii`, which drops the high
 * bit: the byte 0xE1 reads as "a". A private CA admitted by trusted-root could
 * issue such a name, so every identity byte must be printable ASCII first.
 */
export function checkIdentityBytes(certificate: X509Certificate): void {
  const san = certificate.extSubjectAltName
  // extnValue is an OCTET STRING wrapping the SEQUENCE of GeneralNames.
  for (const name of san?.valueObj.subs[0]?.subs ?? []) {
    if (!IDENTITY_NAME_TAGS.some((tag) => name.tag.isContextSpecific(tag))) continue
    // otherName: SEQUENCE { type-id OID, [0] EXPLICIT value }; the value is the string.
    const value: ASN1Obj | undefined = name.tag.isContextSpecific(0) ? name.subs[1]?.subs[0] : name
    if (value) requirePrintable(value.value, 'subject alternative name')
  }
  const v2 = certificate.extension(OID_ISSUER_V2)
  if (v2) requirePrintable(v2.valueObj.subs[0]?.value ?? v2.value, 'OIDC issuer')
  else {
    const v1 = certificate.extension(OID_ISSUER_V1)
    if (v1) requirePrintable(v1.value, 'OIDC issuer')
  }
}

/**
 * The value of a Fulcio extension of version 2 (1.3.6.1.4.1.57264.1.8 and up): a DER UTF8String, checked to be
 * printable ASCII as every identity byte is; undefined when the certificate lacks it.
 */
function fulcioExtension(certificate: X509Certificate, oid: string, what: string): string | undefined {
  const extension = certificate.extension(oid)
  if (!extension) return undefined
  const bytes = extension.valueObj.subs[0]?.value ?? extension.value
  requirePrintable(bytes, what)
  return bytes.toString('ascii')
}

/** Checks each claim against its extension; returns the values seen, for the verified output and the summary. */
export function checkClaims(certificate: X509Certificate, claims: readonly CertificateClaim[]): Record<string, string> {
  const seen: Record<string, string> = {}
  for (const claim of claims) {
    const value = fulcioExtension(certificate, claim.oid, claim.extension)
    if (value === undefined) {
      throw new Error(`its certificate has no ${claim.extension} extension (${claim.oid}), which ${claim.name} asks for`)
    }
    if (!claim.match.pattern.test(value)) {
      throw new Error(`its certificate's ${claim.extension} is "${untrusted(value)}", and ${claim.name} asks for ${claim.match.description}`)
    }
    seen[claim.name] = value
  }
  return seen
}

/**
 * A bundle carries the leaf and at most the intermediates; the root comes
 * from the trusted root alone (Sigstore client spec). A chain that brings its
 * own root is refused, whether or not that root is trusted.
 */
export function checkChainHasNoRoot(bundle: Bundle, root: TrustedRoot): void {
  const content = bundle.verificationMaterial.content
  if (content.$case !== 'x509CertificateChain') return
  const trustedRoots = root.certificateAuthorities.flatMap((ca) => ca.certChain?.certificates.slice(-1) ?? []).map((c) => Buffer.from(c.rawBytes))
  content.x509CertificateChain.certificates.forEach((entry, i) => {
    const der = Buffer.from(entry.rawBytes)
    const certificate = X509Certificate.parse(der)
    const selfSigned = certificate.subject.equals(certificate.issuer) && certificate.verify()
    if (selfSigned || trustedRoots.some((r) => r.equals(der))) {
      throw new Error(
        `its certificate chain includes a root certificate (entry ${i + 1}); a bundle may carry the leaf and intermediates only, the root comes from the trusted root`
      )
    }
  })
}

/** A verifier as a log entry names it: a certificate or a public key, PEM (Rekor v1) or DER (Rekor v2). */
function publicKeyOf(material: Buffer): KeyObject | undefined {
  try {
    return new NodeX509Certificate(material).publicKey
  } catch {
    try {
      const text = material.toString('utf8')
      return text.startsWith('-----BEGIN') ? createPublicKey(text) : createPublicKey({ key: material, format: 'der', type: 'spki' })
    } catch {
      return undefined
    }
  }
}

function fromBase64(value: unknown): Buffer | undefined {
  return typeof value === 'string' && value !== '' ? Buffer.from(value, 'base64') : undefined
}

/** The value at a path of keys in parsed JSON, or undefined wherever the path does not hold. */
function at(value: unknown, ...path: string[]): unknown {
  let current = value
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [])

/** A Rekor v2 verifier: an X.509 certificate or a public key, DER in base64. */
const v2Verifier = (verifier: unknown): unknown => at(verifier, 'x509Certificate', 'rawBytes') ?? at(verifier, 'publicKey', 'rawBytes')

/** Every key a Rekor entry body says verified the signature (hashedrekord, dsse and intoto; Rekor v1 and v2). */
export function keysInLogBody(body: Buffer): KeyObject[] {
  // The body was checked against the signature by @sigstore/verify; here only the key fields are read, each optional.
  const entry: unknown = JSON.parse(body.toString('utf8'))
  const kind = at(entry, 'kind')
  const spec = at(entry, 'spec')
  const named: unknown[] = []
  if (at(spec, 'hashedRekordV002')) named.push(v2Verifier(at(spec, 'hashedRekordV002', 'signature', 'verifier')))
  else if (at(spec, 'dsseV002')) named.push(...list(at(spec, 'dsseV002', 'signatures')).map((s) => v2Verifier(at(s, 'verifier'))))
  else if (kind === 'hashedrekord') named.push(at(spec, 'signature', 'publicKey', 'content'))
  else if (kind === 'dsse') named.push(...list(at(spec, 'signatures')).map((s) => at(s, 'verifier')))
  else if (kind === 'intoto') named.push(at(spec, 'publicKey'), ...list(at(spec, 'content', 'envelope', 'signatures')).map((s) => at(s, 'publicKey')))
  return named.flatMap((value) => {
    const bytes = fromBase64(value)
    const key = bytes && publicKeyOf(bytes)
    return key ? [key] : []
  })
}

/**
 * The log entry must name the key that signed, as cosign's comparePublicKey
 * requires: a log entry of someone else's key proves nothing about this
 * signature's time or publication.
 */
export function checkLogEntriesName(bundle: Bundle, signer: KeyObject): void {
  const spki = signer.export({ type: 'spki', format: 'der' })
  for (const entry of bundle.verificationMaterial.tlogEntries) {
    const keys = keysInLogBody(Buffer.from(entry.canonicalizedBody))
    if (!keys.some((k) => spki.equals(k.export({ type: 'spki', format: 'der' })))) {
      throw new Error(`its transparency log entry ${untrusted(entry.logIndex)} names ${keys.length ? 'another key' : 'no key'} than the one that signed`)
    }
  }
}

/** The log index that verification covered: the SET signs the entry's own; an inclusion proof, its own. */
export function verifiedLogIndex(bundle: Bundle): string | undefined {
  const entry = bundle.verificationMaterial.tlogEntries[0]
  if (!entry) return undefined
  if (entry.inclusionPromise) return entry.logIndex
  return entry.inclusionProof?.logIndex
}
