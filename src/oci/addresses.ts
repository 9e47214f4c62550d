import { isIP } from 'node:net'
import { isLoopbackHost } from './reference.js'

/**
 * Where a server may send us. A URL a server names (a token realm, a
 * download location) is followed only where that server itself could be:
 * link-local is where cloud metadata services live, and a public server has
 * no reason to point at a private network (go-containerregistry validateRealmURL).
 */
export function isLinkLocal(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase()
  return /^169\.254\./.test(bare) || bare.startsWith('fe80:')
}

export function isPrivateAddress(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '')
  if (isLoopbackHost(bare) || bare === '0.0.0.0') return true
  if (isIP(bare) === 4) {
    const [a, b] = bare.split('.').map(Number) as [number, number]
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || a === 0
  }
  if (isIP(bare) === 6) {
    const lower = bare.toLowerCase()
    return lower.startsWith('fe80:') || lower.startsWith('fc') || lower.startsWith('fd') || lower === '::'
  }
  return false
}
