import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { PromoteError, errorMessage } from '../errors.js'
import { untrusted } from '../untrusted.js'
import { DOCKER_HUB, canonicalRegistry } from './reference.js'

export type Credential =
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  /** An OAuth2 refresh token, as `docker login` stores for Azure and others ("identitytoken"). */
  | { readonly kind: 'identity-token'; readonly token: string }
  /** A bearer token to send as is ("registrytoken"). */
  | { readonly kind: 'registry-token'; readonly token: string }

export interface CredentialSource {
  lookup(registry: string): Promise<Credential | undefined>
}

export interface HelperResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

export type HelperRunner = (program: string, args: string[], input: string) => Promise<HelperResult>

interface DockerConfigEntry {
  auth?: string
  username?: string
  password?: string
  identitytoken?: string
  registrytoken?: string
}

interface DockerConfig {
  auths?: Record<string, DockerConfigEntry>
  credsStore?: string
  credHelpers?: Record<string, string>
}

export interface DockerCredentialOptions {
  /** The folder holding config.json; default $DOCKER_CONFIG, then ~/.docker. */
  readonly configDir?: string
  /** Used for ghcr.io when the docker config has nothing for it. */
  readonly githubToken?: string
  readonly githubActor?: string
  readonly runHelper?: HelperRunner
  /** Told about every secret found, so the caller can mask it in logs. */
  readonly onSecret?: (secret: string) => void
}

// Docker Hub is keyed by its legacy index URL in config.json and in credential helpers.
const DOCKER_HUB_SERVER_URL = 'https://index.docker.io/v1/'
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

// Imported when a helper runs: @actions/exec loads child_process and @actions/io, which most runs never need.
const runWithActionsExec: HelperRunner = async (program, args, input) => {
  const { getExecOutput } = await import('@actions/exec')
  return getExecOutput(program, args, {
    input: Buffer.from(input),
    silent: true,
    ignoreReturnCode: true
  })
}

/** `https://index.docker.io/v1/` → `docker.io`; `http://localhost:5000/x` → `localhost:5000`. */
export function configKeyRegistry(key: string): string {
  return canonicalRegistry(key.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? '')
}

function fromEntry(entry: DockerConfigEntry, source: string): Credential | undefined {
  if (entry.identitytoken) return { kind: 'identity-token', token: entry.identitytoken }
  if (entry.registrytoken) return { kind: 'registry-token', token: entry.registrytoken }
  if (entry.username && entry.password) {
    return { kind: 'basic', username: entry.username, password: entry.password }
  }
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) {
      throw new PromoteError('CREDENTIALS', `${source}: the "auth" value is not base64 of "username:password"`)
    }
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
  }
  return undefined
}

/**
 * Credentials the way docker/login-action leaves them: credHelpers, then
 * auths, then credsStore, matched by exact canonical host (never a substring,
 * so one registry's secret never reaches another).
 */
export class DockerCredentials implements CredentialSource {
  readonly #options: DockerCredentialOptions
  readonly #cache = new Map<string, Promise<Credential | undefined>>()
  #config?: Promise<{ config: DockerConfig; path: string }>

  constructor(options: DockerCredentialOptions = {}) {
    this.#options = options
  }

  lookup(registry: string): Promise<Credential | undefined> {
    const key = canonicalRegistry(registry)
    let found = this.#cache.get(key)
    if (!found) {
      found = this.#resolve(key).then((credential) => {
        if (credential) this.#mask(credential)
        return credential
      })
      this.#cache.set(key, found)
    }
    return found
  }

  #mask(credential: Credential): void {
    const onSecret = this.#options.onSecret
    if (!onSecret) return
    if (credential.kind === 'basic') {
      onSecret(credential.password)
      onSecret(Buffer.from(`${credential.username}:${credential.password}`).toString('base64'))
    } else {
      onSecret(credential.token)
    }
  }

  async #loadConfig(): Promise<{ config: DockerConfig; path: string }> {
    const dir = this.#options.configDir ?? process.env['DOCKER_CONFIG'] ?? join(homedir(), '.docker')
    const path = join(dir, 'config.json')
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, path }
      throw new PromoteError('CREDENTIALS', `cannot read docker config ${path}: ${errorMessage(error)}`, { cause: error })
    }
    try {
      const parsed: unknown = JSON.parse(text)
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object')
      return { config: parsed, path }
    } catch (error) {
      throw new PromoteError('CREDENTIALS', `docker config ${path} is not valid JSON: ${errorMessage(error)}`, { cause: error })
    }
  }

  async #resolve(registry: string): Promise<Credential | undefined> {
    this.#config ??= this.#loadConfig()
    const { config, path } = await this.#config
    const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => configKeyRegistry(key) === registry)?.[1]
    if (helper) return this.#fromHelper(helper, registry)
    const entry = Object.entries(config.auths ?? {}).find(([key]) => configKeyRegistry(key) === registry)?.[1]
    const fromAuths = entry ? fromEntry(entry, `${path} auths["${registry}"]`) : undefined
    if (fromAuths) return fromAuths
    if (config.credsStore) {
      const stored = await this.#fromHelper(config.credsStore, registry)
      if (stored) return stored
    }
    if (registry === 'ghcr.io' && this.#options.githubToken) {
      return {
        kind: 'basic',
        username: this.#options.githubActor ?? 'oci-promote',
        password: this.#options.githubToken
      }
    }
    return undefined
  }

  async #fromHelper(name: string, registry: string): Promise<Credential | undefined> {
    if (!HELPER_NAME.test(name)) {
      throw new PromoteError('CREDENTIALS', `docker config names credential helper "${name}", which is not a valid helper name`)
    }
    const program = `docker-credential-${name}`
    const serverUrl = registry === DOCKER_HUB ? DOCKER_HUB_SERVER_URL : registry
    let result: HelperResult
    try {
      result = await (this.#options.runHelper ?? runWithActionsExec)(program, ['get'], serverUrl)
    } catch (error) {
      throw new PromoteError(
        'CREDENTIALS',
        `credential helper ${program} could not be run for ${registry}: ${errorMessage(error)}. Install it or remove it from the docker config`,
        { cause: error }
      )
    }
    if (result.exitCode !== 0) {
      // The helper protocol's answer for "nothing stored": https://github.com/docker/docker-credential-helpers
      if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined
      const lastLine = (result.stderr || result.stdout).trim().split(/\r?\n/).pop() ?? ''
      throw new PromoteError('CREDENTIALS', `credential helper ${program} failed for ${registry} (exit ${result.exitCode}): ${untrusted(lastLine)}`)
    }
    let answer: { Username?: string; Secret?: string }
    try {
      answer = JSON.parse(result.stdout) as typeof answer
    } catch (error) {
      throw new PromoteError('CREDENTIALS', `credential helper ${program} printed something other than JSON for ${registry}`, { cause: error })
    }
    if (!answer.Secret) return undefined
    if (answer.Username === '<token>') return { kind: 'identity-token', token: answer.Secret }
    return { kind: 'basic', username: answer.Username ?? '', password: answer.Secret }
  }
}
