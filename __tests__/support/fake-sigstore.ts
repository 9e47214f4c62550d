// A local stand-in for GitHub's OIDC token endpoint, Fulcio and Rekor, so the
// keyless signing path (@sigstore/sign) runs end to end with offline trust
// material. Fulcio certifies whatever key asks, for a fixed identity; Rekor
// canonicalizes dsse entries as the real one does and signs SETs and checkpoints.
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { TestCA, TestRekor } from './sigstore.ts'

export interface FakeSigstore {
  readonly url: string
  /** ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN for the action's environment. */
  readonly oidcEnv: Record<string, string>
  readonly requests: string[]
  stop(): Promise<void>
}

/** `extensions`: more Fulcio extensions for every certificate (OID → value), as a GitHub Actions certificate carries. */
export async function startFakeSigstore(ca: TestCA, rekor: TestRekor, identity: string, extensions: Record<string, string> = {}): Promise<FakeSigstore> {
  const requests: string[] = []
  const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined
    const path = new URL(req.url ?? '/', 'http://x').pathname
    requests.push(`${req.method} ${path}`)
    const json = (status: number, value: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
    if (path === '/oidc') {
      const claims = Buffer.from(JSON.stringify({ sub: 'repo:acme/app:ref:refs/heads/main', iss: 'https://token.actions.githubusercontent.com' })).toString(
        'base64url'
      )
      return json(200, { value: `e30.${claims}.sig` })
    }
    if (path === '/api/v2/signingCert') {
      const leaf = await ca.certifyPem(body.publicKeyRequest.publicKey.content, identity, extensions)
      return json(201, { signedCertificateDetachedSct: { chain: { certificates: [leaf, ca.certificate.toString('pem')] } } })
    }
    if (path === '/api/v1/log/entries' && body?.kind === 'dsse') {
      const envelope = JSON.parse(body.spec.proposedContent.envelope) as { payload: string; signatures: { sig: string }[] }
      const verifier = body.spec.proposedContent.verifiers[0] as string
      const entry = rekor.log({
        apiVersion: '0.0.1',
        kind: 'dsse',
        spec: {
          envelopeHash: { algorithm: 'sha256', value: sha256Hex(body.spec.proposedContent.envelope) },
          payloadHash: { algorithm: 'sha256', value: sha256Hex(Buffer.from(envelope.payload, 'base64')) },
          signatures: [{ signature: envelope.signatures[0]!.sig, verifier }]
        }
      })
      return json(201, {
        [sha256Hex(entry.body)]: {
          body: entry.body.toString('base64'),
          integratedTime: entry.integratedTime,
          logID: entry.logId.toString('hex'),
          logIndex: entry.logIndex,
          verification: {
            signedEntryTimestamp: entry.set.toString('base64'),
            inclusionProof: { checkpoint: entry.checkpoint, hashes: [], logIndex: 0, rootHash: entry.rootHash.toString('hex'), treeSize: 1 }
          }
        }
      })
    }
    json(404, { message: 'not found' })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    url,
    oidcEnv: { ACTIONS_ID_TOKEN_REQUEST_URL: `${url}/oidc?x=1`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'oidc-request-token' },
    requests,
    async stop() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
}
