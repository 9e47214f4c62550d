#!/usr/bin/env node
// oci-promote as a command, on the action's engine: for GitLab CI, Jenkins, Tekton, and a person at a terminal
// doing a break-glass rollback. Flags are named like the action's inputs and checked by the same code; outputs go
// to stdout as JSON, the log to stderr.
import { readFile } from 'node:fs/promises'
import { createPublicKey } from 'node:crypto'
import type { CopyProgress } from './copy.js'
import { PromoteError, errorMessage, failureMessage } from './errors.js'
import { loadInputs, type InputSource } from './inputs.js'
import { SHA256_DIGEST, sha256Digest } from './oci/digest.js'
import { outputsOf, resultLines, runPromotion } from './run.js'
import { commandSafe, untrusted } from './untrusted.js'
import { VERSION } from './version.js'
import { GITHUB_ACTIONS_ISSUER, exactIdentity, type SignaturePolicy } from './verify/policy.js'

/** Exit codes, as documented in the README. */
export const EXIT = { ok: 0, refused: 1, usage: 2 } as const

const COMMANDS = ['promote', 'plan', 'verify', 'stage', 'rollback', 'prune', 'verify-bundle'] as const
type Command = (typeof COMMANDS)[number]

// Inputs that are switches: `--verify-blobs` alone means true, `--no-verify-blobs` false.
const SWITCHES = new Set([
  'dry-run',
  'verify-blobs',
  'show-summary',
  'verify-signature',
  'copy-signatures',
  'attest-promotion',
  'history-tags',
  'github-deployment'
])
// Inputs a workflow gives one per line: repeating the flag adds a line.
const LISTS = new Set(['to', 'insecure-registries', 'attestation-policy'])
// The action's inputs (action.yml); every other flag is a usage error.
const INPUTS = new Set([
  'image',
  'release',
  'shard',
  'keep-tags',
  'prune-tags',
  'older-than',
  'keep-last',
  'rollback-window',
  'dry-run',
  'max-deletions',
  'digest',
  'to',
  'immutable-tags',
  'verify-blobs',
  'insecure-registries',
  'github-token',
  'concurrency',
  'environment',
  'attest-promotion',
  'signing-key',
  'fulcio-url',
  'rekor-url',
  'require-environment',
  'promotion-identity',
  'promotion-identity-regexp',
  'promotion-public-key',
  'history-tags',
  'github-deployment',
  'verify-signature',
  'public-key',
  'certificate-identity',
  'certificate-identity-regexp',
  'certificate-oidc-issuer',
  'attestation-type',
  'attestation-policy',
  'signed-platforms',
  'trusted-root',
  'copy-signatures',
  'source-repository',
  'source-owner',
  'source-ref',
  'source-ref-regexp',
  'source-digest',
  'signer-workflow',
  'signer-workflow-regexp',
  'signer-repository',
  'signer-digest',
  'deny-self-hosted-runners',
  'promotion-source-repository',
  'promotion-source-owner',
  'promotion-source-ref',
  'promotion-source-ref-regexp',
  'promotion-source-digest',
  'promotion-signer-workflow',
  'promotion-signer-workflow-regexp',
  'promotion-signer-repository',
  'promotion-signer-digest',
  'promotion-deny-self-hosted-runners',
  'deadline-seconds',
  'show-summary'
])
// verify-bundle speaks the Sigstore conformance suite's protocol (sigstore-conformance docs/cli_protocol.md).
const BUNDLE_FLAGS = new Set(['bundle', 'certificate-identity', 'certificate-oidc-issuer', 'key', 'trusted-root'])

const USAGE = `oci-promote ${VERSION}: promote a container image between environments by digest

usage:
  oci-promote promote|plan|verify|rollback [IMAGE] --to TAG [--to TAG ...] [--INPUT VALUE ...]
  oci-promote promote|plan|verify|stage|rollback --release FILE [--to TAG ...] [--shard K/N] [--INPUT VALUE ...]
  oci-promote prune HOST/REPO --prune-tags REGEXP [--older-than 30d] [--keep-last 10] [--dry-run] [--INPUT VALUE ...]
  oci-promote verify-bundle --bundle FILE (--certificate-identity ID --certificate-oidc-issuer ISSUER | --key FILE)
                            [--trusted-root FILE] ARTIFACT_FILE_OR_SHA256_DIGEST
  oci-promote --version | --help

Flags are the action's inputs (README, "Inputs"): --public-key, --certificate-identity, --environment, …
A switch alone is true (--verify-blobs); --no-SWITCH is false (--no-verify-signature).
Credentials come from the docker config (DOCKER_CONFIG, credential helpers); GITHUB_TOKEN is github-token.
Outputs (digest, image, verified, promoted) are printed to stdout as JSON; the log goes to stderr.
Exit codes: 0 done, 1 refused or failed (nothing half-promoted), 2 bad usage or input.`

class UsageError extends Error {}

interface Parsed {
  readonly command: Command
  readonly flags: ReadonlyMap<string, string[]>
  readonly positional: readonly string[]
  readonly debug: boolean
}

function parse(argv: readonly string[]): Parsed | 'help' | 'version' {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') return 'help'
  if (command === '--version' || command === '-v') return 'version'
  if (!(COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command "${untrusted(command)}"; use one of ${COMMANDS.join(', ')}`)
  const known = command === 'verify-bundle' ? BUNDLE_FLAGS : INPUTS
  const flags = new Map<string, string[]>()
  const positional: string[] = []
  let debug = false
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    if (!arg.startsWith('--')) {
      positional.push(arg)
      continue
    }
    if (arg === '--debug') {
      debug = true
      continue
    }
    const eq = arg.indexOf('=')
    let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1)
    if (name.startsWith('no-') && SWITCHES.has(name.slice(3)) && value === undefined) {
      name = name.slice(3)
      value = 'false'
    }
    if (!known.has(name)) throw new UsageError(`unknown flag --${untrusted(name)}${command === 'verify-bundle' ? ' for verify-bundle' : ''}`)
    if (value === undefined) {
      if (command !== 'verify-bundle' && SWITCHES.has(name)) value = 'true'
      else if (i + 1 < rest.length) value = rest[++i]!
      else throw new UsageError(`--${name} needs a value`)
    }
    if (flags.has(name) && !LISTS.has(name)) throw new UsageError(`--${name} is given twice`)
    flags.set(name, [...(flags.get(name) ?? []), value])
  }
  return { command: command as Command, flags, positional, debug }
}

const stderr = (line: string): void => void process.stderr.write(`${commandSafe(line)}\n`)

/** Prints outputs as JSON: one line for a pipe, indented for a person. */
function printJson(value: object): void {
  process.stdout.write(`${JSON.stringify(value, null, process.stdout.isTTY ? 2 : undefined)}\n`)
}

async function promoteCommand(parsed: Parsed): Promise<number> {
  const flags = new Map(parsed.flags)
  if (parsed.positional.length > 1) throw new UsageError(`one image, please; got ${parsed.positional.length} positional arguments`)
  if (parsed.positional[0] !== undefined) {
    if (flags.has('image')) throw new UsageError('give the image as --image or as an argument, not both')
    flags.set('image', [parsed.positional[0]])
  }
  const githubToken = process.env['GITHUB_TOKEN']
  const source: InputSource = {
    get: (name) => {
      if (name === 'mode') return parsed.command
      if (name === 'show-summary') return 'false'
      const values = flags.get(name)
      if (values) return values.join('\n')
      return name === 'github-token' ? (githubToken ?? '') : ''
    },
    // A terminal has no runner to mask secrets; they are never printed, and that is all that can be done here.
    secret: () => {}
  }
  const inputs = await loadInputs(source)
  const progress = process.stdout.isTTY && process.stderr.isTTY ? progressLine() : undefined
  const say = (line: string): void => {
    progress?.clear()
    stderr(line)
  }
  const log = { info: say, ...(parsed.debug ? { debug: (m: string) => say(`debug: ${m}`) } : {}) }
  const outcome = await runPromotion(inputs, { log, onSecret: () => {}, env: process.env, ...(progress ? { progress: progress.draw } : {}) })
  progress?.clear()
  for (const line of resultLines(outcome)) stderr(line)
  for (const note of outcome.results.flatMap((r) => r.notes)) stderr(`note: ${note}`)
  printJson(outputsOf(outcome))
  return EXIT.ok
}

/** One line on a terminal, redrawn as blobs land: "copying to host/repo: 3/8 blobs, 120.5/512.0 MiB". */
function progressLine(): { draw: (p: CopyProgress) => void; clear: () => void } {
  let shown = false
  const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)
  return {
    draw: (p) => {
      process.stderr.write(`\r\x1b[2Kcopying to ${untrusted(p.repository)}: ${p.blobsDone}/${p.blobs} blobs, ${mib(p.bytesDone)}/${mib(p.bytes)} MiB`)
      shown = true
    },
    clear: () => {
      if (shown) process.stderr.write('\r\x1b[2K')
      shown = false
    }
  }
}

function single(parsed: Parsed, name: string): string | undefined {
  return parsed.flags.get(name)?.[0]
}

/**
 * One Sigstore bundle against a file or a digest, as the Sigstore client
 * conformance suite drives a client: exit 0 when it verifies, 1 when not.
 */
async function verifyBundleCommand(parsed: Parsed): Promise<number> {
  const bundlePath = single(parsed, 'bundle')
  const artifact = parsed.positional[0]
  if (!bundlePath || !artifact || parsed.positional.length !== 1)
    throw new UsageError('verify-bundle needs --bundle FILE and one artifact (a file or sha256:HEX)')
  const keyPath = single(parsed, 'key')
  const identity = single(parsed, 'certificate-identity')
  if (!keyPath === !identity) throw new UsageError('verify-bundle needs either --key or --certificate-identity (with --certificate-oidc-issuer)')
  const { verifyArtifactBundle } = await import('./verify/index.js')
  try {
    const publicKeys = keyPath ? [createPublicKey(await readFile(keyPath, 'utf8'))] : []
    const policy: SignaturePolicy = {
      publicKeys,
      ...(identity ? { identity: exactIdentity(identity) } : {}),
      issuer: single(parsed, 'certificate-oidc-issuer') ?? GITHUB_ACTIONS_ISSUER,
      // A bundle about a file: any predicate type, as verify-bundle checks it.
      predicateTypes: 'any',
      signedPlatforms: 'index'
    }
    const bytes = SHA256_DIGEST.test(artifact) ? undefined : await readFile(artifact)
    const bundle: unknown = JSON.parse(await readFile(bundlePath, 'utf8'))
    const trustedRoot = single(parsed, 'trusted-root')
    const verified = await verifyArtifactBundle({
      bundle,
      ...(bytes ? { artifact: bytes } : { digest: artifact }),
      policy,
      trust: trustedRoot ? { trustedRootPath: trustedRoot } : { tufCachePath: `${process.env['HOME'] ?? '.'}/.cache/oci-promote-tuf` }
    })
    stderr(`verified: ${bytes ? sha256Digest(bytes) : artifact} signed by ${verified.identity ?? verified.keyId ?? 'unknown'}`)
    printJson(verified)
    return EXIT.ok
  } catch (error) {
    stderr(`not verified: ${failureMessage(error)}`)
    return EXIT.refused
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const parsed = parse(argv)
    if (parsed === 'help') {
      process.stdout.write(`${USAGE}\n`)
      return EXIT.ok
    }
    if (parsed === 'version') {
      process.stdout.write(`${VERSION}\n`)
      return EXIT.ok
    }
    return parsed.command === 'verify-bundle' ? await verifyBundleCommand(parsed) : await promoteCommand(parsed)
  } catch (error) {
    if (error instanceof UsageError) {
      stderr(`oci-promote: ${error.message}\n\n${USAGE}`)
      return EXIT.usage
    }
    stderr(`oci-promote: ${failureMessage(error)}`)
    const cause = error instanceof Error ? error.cause : undefined
    if (cause !== undefined) stderr(`caused by: ${untrusted(errorMessage(cause))}`)
    const usage = error instanceof PromoteError && (error.code === 'INPUT_INVALID' || error.code === 'SIGNATURE_POLICY_MISSING')
    return usage ? EXIT.usage : EXIT.refused
  }
}

process.exitCode = await main(process.argv.slice(2))
