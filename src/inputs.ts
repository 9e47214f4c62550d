import * as core from '@actions/core'
import { createPublicKey, type KeyObject } from 'node:crypto'
import { accessSync, constants, readFileSync } from 'node:fs'
import { isAbsolute, relative, resolve, sep } from 'node:path'
import { PromoteError, errorMessage } from './errors.js'
import { SHA256_DIGEST } from './oci/digest.js'
import { formatReference, parseDestination, parseReference, type Reference } from './oci/reference.js'
import { DEFAULT_IMMUTABLE_TAGS, type Mode } from './promote.js'
import { PROMOTION_PREDICATE_TYPE } from './records.js'
import {
  FULCIO_EXTENSIONS,
  GITHUB_ACTIONS_ISSUER,
  escapeRegExp,
  exactIdentity,
  identityRegexp,
  signaturePredicateTypes,
  type CertificateClaim,
  type IdentityPolicy,
  type SignaturePolicy
} from './verify/policy.js'

/** One image to promote and where: the `image`, `digest` and `to` inputs, or one entry of a release. */
export interface ImageInput {
  readonly image: Reference
  readonly digest?: string
  readonly to: readonly Reference[]
}

/** A release: its images as one unit (the `release` input), and the slice this job takes of it (`shard`). */
export interface ReleaseInput {
  /** How many images the release document lists; `images` holds this job's shard of them. */
  readonly size: number
  readonly shard?: { readonly index: number; readonly count: number }
}

/** mode: prune: what may go, and what must stay. */
export interface PruneInputs {
  readonly keepTags?: RegExp
  readonly pruneTags?: RegExp
  readonly olderThanMs: number
  readonly keepLast: number
  readonly rollbackWindow: { readonly count: number } | { readonly ms: number }
  readonly dryRun: boolean
  readonly maxDeletions: number
}

export interface Inputs {
  /** Set for mode: prune; images then holds the repository. */
  readonly prune?: PruneInputs
  /** The image of a single-image run, or the images of a release (this job's shard). */
  readonly images: readonly ImageInput[]
  /** Set when the images come from the `release` input. */
  readonly release?: ReleaseInput
  readonly mode: InputMode
  readonly immutableTags?: RegExp
  readonly verifyBlobs: boolean
  readonly insecureRegistries: readonly string[]
  readonly githubToken?: string
  readonly concurrency: number
  readonly showSummary: boolean
  readonly verifySignature: boolean
  /** Set when verify-signature is true; reading it fails when no policy is given. */
  readonly signaturePolicy?: SignaturePolicy
  readonly trustedRoot?: string
  readonly copySignatures: boolean
  /** The whole run must finish within this; a stalled registry fails the step instead of holding it. */
  readonly deadlineSeconds: number
  readonly promotion: PromotionInputs
  readonly historyTags: boolean
  readonly githubDeployment: boolean
}

export type InputMode = Mode | 'rollback' | 'prune'
const MODES: readonly InputMode[] = ['promote', 'plan', 'verify', 'stage', 'rollback', 'prune']
const MAX_CONCURRENCY = 64
export const DEFAULT_CONCURRENCY = 8
export const DEFAULT_DEADLINE_SECONDS = 1800
const MAX_INPUT_LENGTH = 64 * 1024

function fail(input: string, message: string, cause?: unknown): never {
  throw new PromoteError('INPUT_INVALID', `input "${input}": ${message}`, cause === undefined ? {} : { cause })
}

/**
 * Where input values come from: the action's INPUT_* variables, or the CLI's
 * flags (named like the inputs). Secrets found while reading are handed to
 * `secret` to be masked.
 */
export interface InputSource {
  get(name: string): string
  secret(value: string): void
}

/** The action's inputs, as the runner passes them. */
export const actionInputs: InputSource = { get: (name) => core.getInput(name), secret: (value) => core.setSecret(value) }

// Set for the duration of one (synchronous) getInputs call.
let source: InputSource = actionInputs

function read(name: string): string {
  const value = source.get(name)
  if (value.length > MAX_INPUT_LENGTH) fail(name, `is ${value.length} characters long; at most ${MAX_INPUT_LENGTH} are accepted`)
  return value
}

function readBoolean(name: string, fallback: boolean): boolean {
  const value = read(name).toLowerCase()
  if (value === '') return fallback
  if (['true', 'yes', 'on', '1'].includes(value)) return true
  if (['false', 'no', 'off', '0'].includes(value)) return false
  return fail(name, `"${value}" is not a boolean; use true or false`)
}

/** One item per line; commas also separate. Blank lines and # comments are skipped. */
export function splitList(value: string): string[] {
  return value
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .flatMap((line) => line.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

function readReference(name: string, parse: () => Reference): Reference {
  let ref: Reference
  try {
    ref = parse()
  } catch (error) {
    // The parser's message already says what is wrong; a cause would repeat it.
    return fail(name, errorMessage(error))
  }
  if (ref.kind === 'layout' && !isAbsolute(ref.path)) {
    const relativeToWorkspace = relative(process.cwd(), resolve(ref.path))
    if (relativeToWorkspace === '..' || relativeToWorkspace.startsWith(`..${sep}`)) {
      fail(name, `oci:${ref.path} leaves the working directory; give a path inside it, or an absolute path such as oci:\${{ runner.temp }}/layout`)
    }
  }
  return ref
}

function readWholeNumber(name: string, fallback: number, min: number, max: number): number {
  const text = read(name).trim()
  const value = text === '' ? fallback : Number(text)
  if (!Number.isInteger(value) || value < min || value > max) fail(name, `"${text}" must be a whole number from ${min} to ${max}`)
  return value
}

/** A regular expression naming whole tags: anchored, so `v1` never matches `v10-hotfix`, nor `pr-.*` `prod-pr-1`. */
function tagPattern(name: string, value: string, hint = ''): RegExp {
  try {
    return new RegExp(`^(?:${value})$`)
  } catch (error) {
    return fail(name, `"${value}" is not a valid regular expression (${errorMessage(error)})${hint}`, error)
  }
}

function readImmutableTags(): RegExp | undefined {
  const value = read('immutable-tags').trim()
  if (value === '') return DEFAULT_IMMUTABLE_TAGS
  if (value === 'none') return undefined
  return tagPattern('immutable-tags', value, '; use "none" to allow every tag to move')
}

/** keep-tags, prune-tags: a tag pattern, or undefined when not given. */
function readPattern(name: string): RegExp | undefined {
  const value = read(name).trim()
  return value === '' ? undefined : tagPattern(name, value)
}

function readPublicKey(name: string): KeyObject | undefined {
  const value = read(name).trim()
  if (value === '') return undefined
  let pem = value
  if (!value.startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(value, 'utf8')
    } catch (error) {
      return fail(name, `is neither a PEM public key nor a readable file (${errorMessage(error)}); pass the contents of cosign.pub or a path to it`)
    }
  }
  try {
    const key = createPublicKey(pem)
    return key
  } catch (error) {
    return fail(name, `is not a PEM public key (${errorMessage(error)}); pass the contents of cosign.pub (-----BEGIN PUBLIC KEY-----)`)
  }
}

/** An exact identity or an anchored regexp, from a pair of exclusive inputs. */
function readIdentity(exactName: string, regexpName: string): IdentityPolicy | undefined {
  const identity = read(exactName).trim()
  const pattern = read(regexpName).trim()
  if (identity && pattern) fail(regexpName, `cannot be combined with ${exactName}; set one of them`)
  if (identity) return exactIdentity(identity)
  if (!pattern) return undefined
  try {
    return identityRegexp(pattern)
  } catch (error) {
    return fail(regexpName, `"${pattern}" is not a valid regular expression (${errorMessage(error)})`)
  }
}

const GITHUB = 'https://github.com'

/** `acme/app` → `https://github.com/acme/app`; a full URL (GitHub Enterprise Server) stays as it is. */
function githubUrl(value: string): string {
  return /^https:\/\//.test(value) ? value : `${GITHUB}/${value.replace(/^\/+/, '')}`
}

/**
 * The certificate claims of one policy (prefix '' for image signatures, 'promotion-' for promotion records), named
 * as `gh attestation verify` names them: --repo, --owner, --source-ref, --source-digest, --signer-workflow,
 * --signer-repo, --signer-digest, --deny-self-hosted-runners.
 */
function readClaims(prefix: '' | 'promotion-'): CertificateClaim[] {
  const claims: CertificateClaim[] = []
  const add = (input: string, extension: { oid: string; extension: string }, match: IdentityPolicy): void => {
    claims.push({ name: `${prefix}${input}`, ...extension, match })
  }
  const value = (input: string): string => read(`${prefix}${input}`).trim()
  const repository = value('source-repository')
  if (repository) add('source-repository', FULCIO_EXTENSIONS.sourceRepositoryUri, exactIdentity(githubUrl(repository)))
  const owner = value('source-owner')
  if (owner) add('source-owner', FULCIO_EXTENSIONS.sourceRepositoryOwnerUri, exactIdentity(githubUrl(owner)))
  const ref = readIdentity(`${prefix}source-ref`, `${prefix}source-ref-regexp`)
  if (ref) add('source-ref', FULCIO_EXTENSIONS.sourceRepositoryRef, ref)
  const digest = value('source-digest')
  if (digest) add('source-digest', FULCIO_EXTENSIONS.sourceRepositoryDigest, exactIdentity(digest))
  const workflow = value('signer-workflow')
  const workflowPattern = value('signer-workflow-regexp')
  if (workflow && workflowPattern) fail(`${prefix}signer-workflow-regexp`, `cannot be combined with ${prefix}signer-workflow; set one of them`)
  if (workflow) {
    // Without @ref, any ref of that workflow file, as gh's --signer-workflow.
    const url = githubUrl(workflow)
    add(
      'signer-workflow',
      FULCIO_EXTENSIONS.buildSignerUri,
      url.includes('@') ? exactIdentity(url) : { pattern: new RegExp(`^${escapeRegExp(url)}@.+$`), description: `${url}@<any ref>` }
    )
  } else if (workflowPattern) {
    try {
      add('signer-workflow', FULCIO_EXTENSIONS.buildSignerUri, identityRegexp(workflowPattern))
    } catch (error) {
      fail(`${prefix}signer-workflow-regexp`, `"${workflowPattern}" is not a valid regular expression (${errorMessage(error)})`)
    }
  }
  const signerRepository = value('signer-repository')
  if (signerRepository) {
    const url = githubUrl(signerRepository)
    add('signer-repository', FULCIO_EXTENSIONS.buildSignerUri, { pattern: new RegExp(`^${escapeRegExp(url)}/.+$`), description: `a workflow of ${url}` })
  }
  const signerDigest = value('signer-digest')
  if (signerDigest) add('signer-digest', FULCIO_EXTENSIONS.buildSignerDigest, exactIdentity(signerDigest))
  if (readBoolean(`${prefix}deny-self-hosted-runners`, false))
    add('deny-self-hosted-runners', FULCIO_EXTENSIONS.runnerEnvironment, exactIdentity('github-hosted'))
  return claims
}

/** The keyless identity of a policy: certificate-identity(-regexp), or, when a signer claim pins the signer, any SAN. */
function keylessIdentity(identity: IdentityPolicy | undefined, claims: readonly CertificateClaim[], prefix: '' | 'promotion-'): IdentityPolicy | undefined {
  if (identity) return identity
  // A GitHub certificate's SAN is its Build Signer URI: a signer claim already says who signed.
  if (claims.some((c) => c.oid === FULCIO_EXTENSIONS.buildSignerUri.oid)) return { pattern: /^.+$/, description: 'any (the signer claims decide)' }
  if (claims.length > 0) {
    fail(
      claims[0]!.name,
      `says where a build came from, not who signed it: also set ${prefix || 'certificate-'}identity, ${prefix || 'certificate-'}identity-regexp, ${prefix}signer-workflow or ${prefix}signer-repository`
    )
  }
  return undefined
}

function readIssuer(): string {
  return read('certificate-oidc-issuer').trim() || GITHUB_ACTIONS_ISSUER
}

function readSignaturePolicy(verifySignature: boolean): SignaturePolicy | undefined {
  const publicKey = readPublicKey('public-key')
  const claims = readClaims('')
  const policyIdentity = keylessIdentity(readIdentity('certificate-identity', 'certificate-identity-regexp'), claims, '')
  const attestationType = read('attestation-type').trim()
  const signedPlatforms = read('signed-platforms').trim() || 'index'
  if (signedPlatforms !== 'index' && signedPlatforms !== 'all') fail('signed-platforms', `"${signedPlatforms}" is not one of index, all`)
  if (attestationType === PROMOTION_PREDICATE_TYPE) {
    fail(
      'attestation-type',
      `${PROMOTION_PREDICATE_TYPE} is oci-promote's promotion record, which says who moved an image, never who built it; gate on it with require-environment and promotion-identity instead`
    )
  }
  // One CEL expression per line (# starts a comment line); compiled before any request, when the verifier is made.
  const attestationPolicy = read('attestation-policy')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
  if (attestationPolicy.length && !attestationType) {
    fail(
      'attestation-policy',
      'needs attestation-type: the predicate type of the attestations the expressions are evaluated on (e.g. https://slsa.dev/provenance/v1)'
    )
  }
  if (!verifySignature) return undefined
  if (!publicKey && !policyIdentity) {
    throw new PromoteError(
      'SIGNATURE_POLICY_MISSING',
      'input "verify-signature" is true, but no signature policy is set, so oci-promote refuses to promote an image it cannot verify. ' +
        'Set public-key (cosign --key), or certificate-identity / certificate-identity-regexp with certificate-oidc-issuer (keyless); ' +
        'or set verify-signature: false to promote without a signature check.'
    )
  }
  return {
    publicKeys: publicKey ? [publicKey] : [],
    ...(policyIdentity ? { identity: policyIdentity } : {}),
    issuer: readIssuer(),
    ...(attestationType ? { attestationType } : {}),
    predicateTypes: signaturePredicateTypes(attestationType),
    signedPlatforms,
    ...(claims.length ? { claims } : {}),
    ...(attestationPolicy.length ? { attestationPolicy } : {})
  }
}

export interface PromotionInputs {
  readonly environment?: string
  /** Set with attest-promotion: a PEM private key, or Fulcio/Rekor endpoints for keyless signing. */
  readonly record?: { readonly signingKey?: string; readonly fulcioURL?: string; readonly rekorURL?: string }
  readonly gate?: { readonly environment: string; readonly policy: SignaturePolicy }
  /** Who may have signed promotion records: for require-environment, and for finding where mode: rollback goes back to. */
  readonly recordPolicy?: SignaturePolicy
}

// Control characters are exactly what this refuses.
// eslint-disable-next-line no-control-regex
const ENVIRONMENT_NAME = /^[^\x00-\x1f\x7f]{1,255}$/

/** Whether a policy for who may have signed promotion records is given (checked when read). */
function promotionPolicyGiven(): boolean {
  const names = ['identity', 'identity-regexp', 'public-key', 'signer-workflow', 'signer-workflow-regexp', 'signer-repository']
  return names.some((name) => read(`promotion-${name}`).trim() !== '')
}

function readPromotionInputs(mode: InputMode): PromotionInputs {
  const environment = read('environment').trim()
  if (environment && !ENVIRONMENT_NAME.test(environment)) fail('environment', 'must be 1 to 255 characters without control characters')
  const attest = readBoolean('attest-promotion', false)
  if (attest && !environment) fail('attest-promotion', 'needs environment: the name of the environment this promotion enters (e.g. staging)')
  let signingKey = read('signing-key').trim()
  if (signingKey && !signingKey.startsWith('-----BEGIN')) {
    try {
      signingKey = readFileSync(signingKey, 'utf8')
    } catch (error) {
      fail('signing-key', `is neither a PEM private key nor a readable file (${errorMessage(error)})`)
    }
  }
  // The runner masks line by line: register every line of the key's body, not the PEM as one value.
  for (const line of signingKey.split(/\r?\n/)) if (line.trim() && !line.startsWith('-----')) source.secret(line.trim())
  const required = read('require-environment').trim()
  if (mode === 'rollback' && !environment)
    fail('environment', 'is required with mode: rollback: the environment whose tags go back (its promotion records say where they were)')
  let recordPolicy: SignaturePolicy | undefined
  if (required || mode === 'rollback' || (mode === 'prune' && promotionPolicyGiven())) {
    const publicKey = readPublicKey('promotion-public-key')
    const recordClaims = readClaims('promotion-')
    const identity = keylessIdentity(readIdentity('promotion-identity', 'promotion-identity-regexp'), recordClaims, 'promotion-')
    if (!publicKey && !identity) {
      fail(
        required ? 'require-environment' : 'mode',
        'needs a policy for who may have promoted: set promotion-identity, promotion-identity-regexp, promotion-signer-workflow or promotion-public-key'
      )
    }
    recordPolicy = {
      publicKeys: publicKey ? [publicKey] : [],
      ...(identity ? { identity } : {}),
      issuer: readIssuer(),
      attestationType: PROMOTION_PREDICATE_TYPE,
      predicateTypes: [PROMOTION_PREDICATE_TYPE],
      signedPlatforms: 'index',
      ...(recordClaims.length ? { claims: recordClaims } : {})
    }
  }
  const endpoint = (name: string): string | undefined => {
    const value = read(name).trim()
    if (value === '') return undefined
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return fail(name, `"${value}" is not a URL; give the instance's base URL, e.g. https://fulcio.example.com`)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(name, `"${value}" must be an http(s) URL`)
    return value.replace(/\/+$/, '')
  }
  const fulcioURL = endpoint('fulcio-url')
  const rekorURL = endpoint('rekor-url')
  return {
    ...(environment ? { environment } : {}),
    ...(attest ? { record: signingKey ? { signingKey } : { ...(fulcioURL ? { fulcioURL } : {}), ...(rekorURL ? { rekorURL } : {}) } } : {}),
    ...(required && recordPolicy ? { gate: { environment: required, policy: recordPolicy } } : {}),
    ...(recordPolicy ? { recordPolicy } : {})
  }
}

function readDigest(name: string, value: string, image: Reference): string | undefined {
  if (value === '') return undefined
  if (!SHA256_DIGEST.test(value)) {
    fail(name, `"${value}" is not a sha256 digest; expected sha256: followed by 64 lowercase hex characters, as the build job's digest output`)
  }
  if (image.digest && image.digest !== value) fail(name, `the image reference pins ${image.digest}, which contradicts digest ${value}`)
  return value
}

const TO_HELP = 'one destination per line, a tag of the source repository (staging) or a full reference (ghcr.io/acme/app:prod)'

/** The single image of the `image`, `digest` and `to` inputs. */
function readImage(mode: InputMode): ImageInput {
  const imageText = read('image').trim()
  if (imageText === '') {
    fail('image', 'is required: the image to promote, e.g. ghcr.io/acme/app:build-42 or ghcr.io/acme/app@sha256:…, or a release document in release')
  }
  const image = readReference('image', () => parseReference(imageText))
  const digest = readDigest('digest', read('digest').trim(), image)
  const to = splitList(read('to')).map((line) => readReference('to', () => parseDestination(line, image)))
  if (to.length === 0 && mode !== 'verify' && mode !== 'prune') fail('to', `is required: ${TO_HELP}`)
  if (mode === 'prune' && to.length > 0) fail('to', 'has no meaning with mode: prune, which cleans the repository named in image')
  return { image, ...(digest ? { digest } : {}), to }
}

const MAX_RELEASE_BYTES = 1024 * 1024
const MAX_RELEASE_IMAGES = 1000
const MAX_SHARDS = 256
const ENTRY_KEYS = new Set(['image', 'digest', 'to'])

/** The release document: inline YAML or JSON, or the path of a file holding it. */
function releaseDocument(value: string): { text: string; where: string } {
  // A document is a list: it starts with "[" (JSON, YAML flow) or "- " (YAML), or spans lines. Anything else is a path.
  if (value.includes('\n') || value.startsWith('[') || value.startsWith('-')) return { text: value, where: 'release' }
  const path = resolve(value)
  const inside = relative(process.cwd(), path)
  if (inside === '..' || inside.startsWith(`..${sep}`)) fail('release', `the file ${value} is outside the working directory; give a path inside the workspace`)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    return fail('release', `is neither a release document (a list of images) nor a readable file (${errorMessage(error)})`)
  }
  if (Buffer.byteLength(text) > MAX_RELEASE_BYTES) fail('release', `the file ${value} is over ${MAX_RELEASE_BYTES} bytes`)
  return { text, where: value }
}

/** `1/3` → the first of three slices. */
function readShard(): ReleaseInput['shard'] {
  const text = read('shard').trim()
  if (text === '') return undefined
  const match = /^(\d+)\/(\d+)$/.exec(text)
  const index = Number(match?.[1])
  const count = Number(match?.[2])
  if (!match || index < 1 || count < 1 || index > count || count > MAX_SHARDS) {
    fail('shard', `"${text}" is not k/n with 1 ≤ k ≤ n ≤ ${MAX_SHARDS}, e.g. \${{ matrix.shard }}/3`)
  }
  return { index, count }
}

/**
 * The release input: a list of entries, each with `image`, optional `digest` and optional `to` (a string or a list;
 * bare tags relative to the entry's repository; the step's `to` when absent). Every entry is checked here, before any
 * request: an entry without an image, a key that is not one of those, a tag two entries would both write.
 */
function readRelease(value: string, mode: InputMode, parseDocument: DocumentParser): { images: ImageInput[]; release: ReleaseInput } {
  for (const exclusive of ['image', 'digest']) {
    if (read(exclusive).trim())
      fail(exclusive, `cannot be combined with release; give each image${exclusive === 'digest' ? "'s digest" : ''} in the release document`)
  }
  const { text, where } = releaseDocument(value)
  let document: unknown
  try {
    document = parseDocument(text)
  } catch (error) {
    return fail('release', `${where} does not parse as YAML or JSON: ${errorMessage(error).split('\n')[0]}`)
  }
  if (!Array.isArray(document) || document.length === 0) {
    fail(
      'release',
      `${where} must be a non-empty list of images, one entry each ({ image, digest, to }); got ${Array.isArray(document) ? 'an empty list' : typeof document}`
    )
  }
  if (document.length > MAX_RELEASE_IMAGES) fail('release', `${where} lists ${document.length} images; at most ${MAX_RELEASE_IMAGES} are accepted`)
  const stepTo = splitList(read('to'))
  const owners = new Map<string, number>()
  const images = document.map((entry: unknown, i): ImageInput => {
    const name = `release entry ${i + 1}`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail('release', `${name} is not a mapping with image, digest and to`)
    const fields = entry as Record<string, unknown>
    const unknown = Object.keys(fields).filter((k) => !ENTRY_KEYS.has(k))
    if (unknown.length) fail('release', `${name} has ${unknown.map((k) => `"${k}"`).join(', ')}; an entry has only image, digest and to`)
    if (typeof fields['image'] !== 'string' || fields['image'].trim() === '') return fail('release', `${name} has no image`)
    const label = `${name} (${fields['image'].trim()})`
    const image = readReference('release', () => {
      try {
        return parseReference((fields['image'] as string).trim())
      } catch (error) {
        throw new Error(`${label}: ${errorMessage(error)}`, { cause: error })
      }
    })
    if (fields['digest'] !== undefined && typeof fields['digest'] !== 'string') fail('release', `${label}: digest is not a string`)
    const digest = readDigest('release', typeof fields['digest'] === 'string' ? fields['digest'].trim() : '', image)
    const toField = fields['to']
    if (toField !== undefined && typeof toField !== 'string' && !(Array.isArray(toField) && toField.every((t) => typeof t === 'string'))) {
      fail('release', `${label}: to is neither a string nor a list of strings`)
    }
    const lines: string[] = toField === undefined ? stepTo : Array.isArray(toField) ? toField : splitList(toField)
    if (lines.length === 0 && mode !== 'verify') fail('release', `${label} has no to, and the step's to is empty: ${TO_HELP}`)
    const to = lines.map((line) =>
      readReference('release', () => {
        try {
          return parseDestination(line.trim(), image)
        } catch (error) {
          throw new Error(`${label}: destination "${line}": ${errorMessage(error)}`, { cause: error })
        }
      })
    )
    for (const ref of to) {
      if (!ref.tag) continue
      const key = formatReference(ref)
      const other = owners.get(key)
      if (other !== undefined && other !== i) fail('release', `${key} is a destination of both release entry ${other + 1} and ${label}; a tag holds one image`)
      owners.set(key, i)
    }
    return { image, ...(digest ? { digest } : {}), to }
  })
  const shard = readShard()
  if (shard && (mode === 'promote' || mode === 'rollback')) {
    fail(
      'shard',
      `cannot be combined with mode: ${mode}, which would move part of a release; ${mode === 'promote' ? 'stage the shards, then promote' : 'roll back'} the whole release in one step`
    )
  }
  return {
    images: shard ? images.filter((_, i) => i % shard.count === shard.index - 1) : images,
    release: { size: images.length, ...(shard ? { shard } : {}) }
  }
}

const DURATION_UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }

/** `30d`, `12h`, `2w`, `90m` → milliseconds. */
function readDuration(name: string, fallback: string): number {
  const text = read(name).trim() || fallback
  const match = /^(\d{1,6})([mhdw])$/.exec(text)
  if (!match) return fail(name, `"${text}" is not a duration; use a number and a unit: 90m, 12h, 30d, 2w`)
  return Number(match[1]) * DURATION_UNITS[match[2]!]!
}

function readPrune(image: Reference): PruneInputs {
  if (image.tag || image.digest) {
    fail(
      'image',
      `names ${formatReference(image)}; mode: prune cleans a whole repository, so give it without tag or digest (${image.kind === 'layout' ? `oci:${image.path}` : `${image.registry}/${image.repository}`})`
    )
  }
  const window = read('rollback-window').trim() || '5'
  const count = /^\d{1,4}$/.test(window) ? Number(window) : undefined
  const rollbackWindow = count !== undefined ? { count } : { ms: readDuration('rollback-window', window) }
  if (count === undefined && !promotionPolicyGiven()) {
    fail(
      'rollback-window',
      `${window} is a window in time, which only promotion records can measure (history tags carry no dates): set promotion-identity, promotion-identity-regexp or promotion-public-key, or give a count such as 5`
    )
  }
  const pruneTags = readPattern('prune-tags')
  const keepTags = readPattern('keep-tags')
  return {
    ...(keepTags ? { keepTags } : {}),
    ...(pruneTags ? { pruneTags } : {}),
    olderThanMs: readDuration('older-than', '30d'),
    keepLast: readWholeNumber('keep-last', 10, 0, 10_000),
    rollbackWindow,
    dryRun: readBoolean('dry-run', false),
    maxDeletions: readWholeNumber('max-deletions', 100, 0, 100_000)
  }
}

/** Parses a release document: YAML 1.2 (a superset of JSON) when loadInputs gives it, JSON alone otherwise. */
export type DocumentParser = (text: string) => unknown

/**
 * Reads and checks every input; the only place that does. Nothing here touches the network. A release document is
 * parsed with `parseDocument`: loadInputs passes a YAML parser, loaded only then (it is not small, and most runs
 * promote one image).
 */
export function getInputs(from: InputSource = actionInputs, parseDocument: DocumentParser = JSON.parse): Inputs {
  source = from
  return readInputs(parseDocument)
}

/** getInputs, with YAML release documents: what the action and the CLI call. */
export async function loadInputs(from: InputSource = actionInputs): Promise<Inputs> {
  if (from.get('release').trim() === '') return getInputs(from)
  // CommonJS when bundled: its exports are on the default export there, and on the namespace under ts-jest.
  const yaml = (await import('yaml')) as typeof import('yaml') & { default?: typeof import('yaml') }
  const { parse } = yaml.default ?? yaml
  // Aliases are capped, so a small document cannot expand without bound.
  return getInputs(from, (text) => parse(text, { uniqueKeys: true, maxAliasCount: 100, prettyErrors: true }) as unknown)
}

function readInputs(parseDocument: DocumentParser): Inputs {
  const modeText = (read('mode').trim() || 'promote') as InputMode
  if (!MODES.includes(modeText)) fail('mode', `"${modeText}" is not one of ${MODES.join(', ')}`)
  const releaseText = read('release').trim()
  if (!releaseText && read('shard').trim()) fail('shard', 'needs release: the document listing the images to take a slice of')
  if (modeText === 'prune' && releaseText) fail('release', 'cannot be combined with mode: prune, which cleans one repository: name it in image')
  const { images, release } = releaseText ? readRelease(releaseText, modeText, parseDocument) : { images: [readImage(modeText)], release: undefined }
  const prune = modeText === 'prune' ? readPrune(images[0]!.image) : undefined

  const concurrency = readWholeNumber('concurrency', DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY)
  const deadlineSeconds = readWholeNumber('deadline-seconds', DEFAULT_DEADLINE_SECONDS, 10, 6 * 3600)

  const githubToken = read('github-token').trim()
  if (githubToken) source.secret(githubToken)

  const insecureRegistries = splitList(read('insecure-registries'))
  for (const host of insecureRegistries) {
    if (!/^[A-Za-z0-9.-]+(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/.test(host)) {
      fail('insecure-registries', `"${host}" is not a registry host (host or host:port, no scheme or path)`)
    }
  }

  const immutableTags = readImmutableTags()
  const githubDeployment = readBoolean('github-deployment', false)
  if (githubDeployment && !read('environment').trim()) fail('github-deployment', 'needs environment: the GitHub environment the deployment is for')
  // Pruning verifies nothing: it decides from tags, ages and history what may be deleted.
  const verifySignature = readBoolean('verify-signature', modeText !== 'prune')
  const signaturePolicy = readSignaturePolicy(verifySignature)
  const trustedRoot = read('trusted-root').trim()
  if (trustedRoot) {
    try {
      accessSync(trustedRoot, constants.R_OK)
    } catch (error) {
      fail('trusted-root', `cannot read a trusted_root.json from ${trustedRoot} (${errorMessage(error)})`)
    }
  }
  return {
    images,
    ...(release ? { release } : {}),
    ...(prune ? { prune } : {}),
    mode: modeText,
    ...(immutableTags ? { immutableTags } : {}),
    verifyBlobs: readBoolean('verify-blobs', false),
    insecureRegistries,
    ...(githubToken ? { githubToken } : {}),
    concurrency,
    showSummary: readBoolean('show-summary', true),
    verifySignature,
    ...(signaturePolicy ? { signaturePolicy } : {}),
    ...(trustedRoot ? { trustedRoot } : {}),
    copySignatures: readBoolean('copy-signatures', true),
    deadlineSeconds,
    promotion: readPromotionInputs(modeText),
    historyTags: readBoolean('history-tags', false),
    githubDeployment
  }
}
