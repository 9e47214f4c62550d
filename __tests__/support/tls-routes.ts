// Public registry names on loopback: a test CA's certificate for `registry-1.docker.io`, `auth.docker.io`,
// `ghcr.io`…, TLS servers in front of local ports, and an undici connector that reaches them, so a reference such
// as `docker.io/library/app` goes through exactly the code path it takes in production (the host mapping, https,
// the credential lookup by public name) while the bytes come from the real registry here.
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect as connectTcp } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as connectTls, createServer as createTlsServer, type Server } from 'node:tls'
import type { Agent } from 'undici'

export interface TlsRoutes {
  /** Agent options whose connector sends each routed host name to its local server, trusting the test certificate. */
  readonly agent: Agent.Options
  stop(): Promise<void>
}

/** `{ 'registry-1.docker.io': 'localhost:PORT' }`: each public name served over TLS in front of a plain local port. */
export async function startTlsRoutes(routes: Record<string, string>): Promise<TlsRoutes> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-promote-tls-'))
  const names = Object.keys(routes)
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=oci-promote test routes',
      '-addext',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`
    ],
    { stdio: 'ignore' }
  )
  const [key, cert] = await Promise.all([readFile(join(dir, 'key.pem')), readFile(join(dir, 'cert.pem'))])
  await rm(dir, { recursive: true, force: true })

  const servers: Server[] = []
  const ports = new Map<string, number>()
  for (const [name, target] of Object.entries(routes)) {
    const [host, port] = target.split(':') as [string, string]
    const server = createTlsServer({ key, cert }, (socket) => {
      const upstream = connectTcp(Number(port), host)
      socket.pipe(upstream).pipe(socket)
      upstream.on('error', () => socket.destroy())
      socket.on('error', () => upstream.destroy())
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    ports.set(name, (server.address() as { port: number }).port)
  }

  const connect: NonNullable<Agent.Options['connect']> = (options, callback) => {
    const port = ports.get(options.hostname)
    if (options.protocol !== 'https:' || port === undefined) {
      callback(new Error(`no test route for ${options.protocol}//${options.hostname}`), null)
      return
    }
    const socket = connectTls({ host: '127.0.0.1', port, servername: options.hostname, ca: cert, ALPNProtocols: ['http/1.1'] })
    socket.once('secureConnect', () => callback(null, socket))
    socket.once('error', (error) => callback(error, null))
  }
  return {
    agent: { connect },
    async stop() {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
    }
  }
}
