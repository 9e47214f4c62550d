import * as core from '@actions/core'
import { PromoteError, errorMessage } from './errors.js'
import { SHA256_DIGEST } from './oci/digest.js'
import { parseDestination, parseReference, type Reference } from './oci/reference.js'
import { DEFAULT_IMMUTABLE_TAGS, type Mode } from './promote.js'

export interface Inputs {
  readonly image: Reference
  readonly digest?: string
  readonly to: readonly Reference[]
  readonly mode: Mode
  readonly immutableTags?: RegExp
  readonly verifyBlobs: boolean
  readonly insecureRegistries: readonly string[]
  readonly githubToken?: string
  readonly concurrency: number
  readonly showSummary: boolean
  readonly verifySignature: boolean
}

const MODES: readonly Mode[] = ['promote', 'plan', 'verify']
const MAX_CONCURRENCY = 64
export const DEFAULT_CONCURRENCY = 8
const MAX_INPUT_LENGTH = 64 * 1024

function fail(input: string, message: string, cause?: unknown): never {
  throw new PromoteError('INPUT_INVALID', `input "${input}": ${message}`, cause === undefined ? {} : { cause })
}

function read(name: string): string {
  const value = core.getInput(name)
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
  try {
    return parse()
  } catch (error) {
    // The parser's message already says what is wrong; a cause would repeat it.
    return fail(name, errorMessage(error))
  }
}

function readImmutableTags(): RegExp | undefined {
  const value = read('immutable-tags').trim()
  if (value === '') return DEFAULT_IMMUTABLE_TAGS
  if (value === 'none') return undefined
  try {
    // Anchored, so `v1` cannot match `v10-hotfix` by accident.
    return new RegExp(`^(?:${value})$`)
  } catch (error) {
    return fail('immutable-tags', `"${value}" is not a valid regular expression (${errorMessage(error)}); use "none" to allow every tag to move`, error)
  }
}

/** Reads and checks every input; the only place that does. Nothing here touches the network. */
export function getInputs(): Inputs {
  const imageText = read('image').trim()
  if (imageText === '') fail('image', 'is required: the image to promote, e.g. ghcr.io/acme/app:build-42 or ghcr.io/acme/app@sha256:…')
  const image = readReference('image', () => parseReference(imageText))

  const digest = read('digest').trim()
  if (digest !== '' && !SHA256_DIGEST.test(digest)) {
    fail('digest', `"${digest}" is not a sha256 digest; expected sha256: followed by 64 lowercase hex characters, as the build job's digest output`)
  }
  if (digest !== '' && image.digest && image.digest !== digest) {
    fail('digest', `the image reference pins ${image.digest}, which contradicts digest ${digest}`)
  }

  const modeText = (read('mode').trim() || 'promote') as Mode
  if (!MODES.includes(modeText)) fail('mode', `"${modeText}" is not one of ${MODES.join(', ')}`)

  const to = splitList(read('to')).map((line) => readReference('to', () => parseDestination(line, image)))
  if (to.length === 0 && modeText !== 'verify') {
    fail('to', 'is required: one destination per line, a tag of the source repository (staging) or a full reference (ghcr.io/acme/app:prod)')
  }

  const concurrencyText = read('concurrency').trim()
  const concurrency = concurrencyText === '' ? DEFAULT_CONCURRENCY : Number(concurrencyText)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    fail('concurrency', `"${concurrencyText}" must be a whole number from 1 to ${MAX_CONCURRENCY}`)
  }

  const githubToken = read('github-token').trim()
  if (githubToken) core.setSecret(githubToken)

  const insecureRegistries = splitList(read('insecure-registries'))
  for (const host of insecureRegistries) {
    if (!/^[A-Za-z0-9.-]+(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/.test(host)) {
      fail('insecure-registries', `"${host}" is not a registry host (host or host:port, no scheme or path)`)
    }
  }

  const immutableTags = readImmutableTags()
  return {
    image,
    ...(digest ? { digest } : {}),
    to,
    mode: modeText,
    ...(immutableTags ? { immutableTags } : {}),
    verifyBlobs: readBoolean('verify-blobs', false),
    insecureRegistries,
    ...(githubToken ? { githubToken } : {}),
    concurrency,
    showSummary: readBoolean('show-summary', true),
    verifySignature: readBoolean('verify-signature', true)
  }
}
