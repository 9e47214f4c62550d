import type { CredentialSource } from './credentials.js'
import { LayoutRepository } from './layout.js'
import { canonicalRegistry, type Reference } from './reference.js'
import { RegistryClient, type RegistryUsage } from './registry.js'
import type { Repository } from './repository.js'
import type { Transport } from './transport.js'

export interface StoresOptions {
  readonly transport: Transport
  readonly credentials: CredentialSource
  /** Registries reached over plain HTTP (loopback always is). */
  readonly insecureRegistries?: readonly string[]
  readonly onSecret?: (secret: string) => void
}

/** Opens repositories by reference, sharing one client (and its tokens) per registry. */
export class Stores {
  readonly #options: StoresOptions
  readonly #clients = new Map<string, RegistryClient>()
  readonly #insecure: ReadonlySet<string>

  constructor(options: StoresOptions) {
    this.#options = options
    this.#insecure = new Set((options.insecureRegistries ?? []).map(canonicalRegistry))
  }

  client(registry: string): RegistryClient {
    let client = this.#clients.get(registry)
    if (!client) {
      client = new RegistryClient({
        registry,
        transport: this.#options.transport,
        credentials: this.#options.credentials,
        insecure: this.#insecure.has(registry),
        ...(this.#options.onSecret ? { onSecret: this.#options.onSecret } : {})
      })
      this.#clients.set(registry, client)
    }
    return client
  }

  /** Declares the access a run needs before its first request, so tokens are fetched once. */
  declareAccess(ref: Reference, action: 'pull' | 'push'): void {
    if (ref.kind === 'registry') this.client(ref.registry).auth.addScope(ref.repository, action)
  }

  /** Fails now when the registry's token already says this repository cannot be written. */
  async checkWriteAccess(ref: Reference): Promise<void> {
    if (ref.kind === 'registry') await this.client(ref.registry).auth.assertGranted(ref.repository, 'push')
  }

  /** What the run cost each registry it spoke to (pulls, rate limit). */
  usage(): RegistryUsage[] {
    return [...this.#clients.values()].map((c) => c.usage)
  }

  repository(ref: Reference): Repository {
    return ref.kind === 'layout' ? new LayoutRepository(ref.path) : this.client(ref.registry).repository(ref.repository)
  }
}
