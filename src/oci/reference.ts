import { PromoteError } from '../errors.js'
import { SHA256_DIGEST } from './digest.js'

// Grammar from https://github.com/distribution/reference/blob/main/reference.go
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`)
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
export const TAG_PATTERN = /^[\w][\w.-]{0,127}$/
const MAX_NAME_LENGTH = 255

export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

export interface RegistryReference {
  readonly kind: 'registry'
  /** Canonical registry name: `docker.io`, `ghcr.io`, `localhost:5000`. */
  readonly registry: string
  readonly repository: string
  readonly tag?: string
  readonly digest?: string
}

/** An OCI Image Layout directory: https://github.com/opencontainers/image-spec/blob/main/image-layout.md */
export interface LayoutReference {
  readonly kind: 'layout'
  readonly path: string
  readonly tag?: string
  readonly digest?: string
}

export type Reference = RegistryReference | LayoutReference

const LAYOUT_PREFIX = 'oci:'

function invalid(input: string, why: string): PromoteError {
  return new PromoteError(
    'REFERENCE_INVALID',
    `"${input}" is not a valid image reference: ${why}. ` + 'Expected host/repository:tag, host/repository@sha256:<64 hex>, or oci:PATH[:tag|@sha256:<64 hex>]'
  )
}

function splitDigest(input: string, rest: string): { rest: string; digest?: string } {
  const at = rest.indexOf('@')
  if (at === -1) return { rest }
  const digest = rest.slice(at + 1)
  if (!SHA256_DIGEST.test(digest)) {
    throw invalid(input, `"${digest}" is not a sha256 digest (sha256: followed by 64 lowercase hex characters)`)
  }
  return { rest: rest.slice(0, at), digest }
}

function checkTag(input: string, tag: string): string {
  if (!TAG_PATTERN.test(tag)) {
    throw invalid(input, `"${tag}" is not a valid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')`)
  }
  return tag
}

/** A ':' after the last '/' starts the tag (a ':' before it belongs to a port or a path). */
function splitTag(input: string, rest: string): { name: string; tag?: string } {
  const colon = rest.lastIndexOf(':')
  if (colon <= rest.lastIndexOf('/')) return { name: rest }
  return { name: rest.slice(0, colon), tag: checkTag(input, rest.slice(colon + 1)) }
}

function parseLayout(input: string): LayoutReference {
  const { rest, digest } = splitDigest(input, input.slice(LAYOUT_PREFIX.length))
  const { name: path, tag } = splitTag(input, rest)
  if (path === '') throw invalid(input, 'the oci: layout path is empty')
  if (path.includes('\0')) throw invalid(input, 'the path contains a NUL byte')
  return { kind: 'layout', path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) }
}

export function canonicalRegistry(host: string): string {
  const lower = host.toLowerCase()
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower
}

/**
 * Parses a reference the way docker does, normalising Docker Hub short names
 * (`alpine` → `docker.io/library/alpine`).
 */
export function parseReference(input: string): Reference {
  const trimmed = input.trim()
  if (trimmed === '') throw invalid(input, 'it is empty')
  if (trimmed.startsWith(LAYOUT_PREFIX)) return parseLayout(trimmed)
  if (/\s/.test(trimmed)) throw invalid(input, 'it contains white space')

  const { rest, digest } = splitDigest(trimmed, trimmed)
  const { name, tag } = splitTag(trimmed, rest)

  let registry = DOCKER_HUB
  let repository = name
  const slash = name.indexOf('/')
  const first = slash === -1 ? '' : name.slice(0, slash)
  if (first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) throw invalid(trimmed, `"${first}" is not a valid registry host`)
    registry = canonicalRegistry(first)
    repository = name.slice(slash + 1)
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`

  if (repository === '') throw invalid(trimmed, 'the repository name is empty')
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(trimmed, `repository component "${component}" must be lowercase letters and digits separated by '.', '_', '__' or '-'`)
    }
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(trimmed, `the name is longer than ${MAX_NAME_LENGTH} characters`)
  }
  return {
    kind: 'registry',
    registry,
    repository,
    ...(tag ? { tag } : {}),
    ...(digest ? { digest } : {})
  }
}

/** `ghcr.io/acme/app` or `oci:./layout`: the repository without tag or digest. */
export function repositoryName(ref: Reference): string {
  return ref.kind === 'layout' ? `${LAYOUT_PREFIX}${ref.path}` : `${ref.registry}/${ref.repository}`
}

export function formatReference(ref: Reference): string {
  let out = repositoryName(ref)
  if (ref.tag) out += `:${ref.tag}`
  if (ref.digest) out += `@${ref.digest}`
  return out
}

/** The immutable form deploy jobs should use: `repository@sha256:…`. */
export function pinnedReference(ref: Reference, digest: string): string {
  return `${repositoryName(ref)}@${digest}`
}

export function withTag<T extends Reference>(ref: T, tag: string | undefined): T {
  const { tag: _dropped, digest: _digest, ...base } = ref
  return { ...base, ...(tag ? { tag } : {}) } as T
}

export function sameRepository(a: Reference, b: Reference): boolean {
  return repositoryName(a) === repositoryName(b)
}

export function sameRegistry(a: Reference, b: Reference): boolean {
  return a.kind === 'registry' && b.kind === 'registry' && a.registry === b.registry
}

/** Docker Hub's API lives on another host than its name. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry
}

export function isLoopbackHost(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/**
 * A destination line: a bare tag means the source repository; anything with a
 * '/', ':' or '@', or the oci: prefix, is a full reference.
 */
export function parseDestination(input: string, source: Reference): Reference {
  const trimmed = input.trim()
  if (!/[/:@]/.test(trimmed)) return withTag(source, checkTag(trimmed, trimmed))
  const ref = parseReference(trimmed)
  if (ref.digest) {
    throw invalid(trimmed, 'a destination names where to write, so it takes a tag or nothing, not a digest')
  }
  return ref
}
