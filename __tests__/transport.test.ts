// Retries, Retry-After, resets and stalls, against a local server that misbehaves on cue.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createServer, type Socket } from 'node:net'
import { Agent } from 'undici'
import { parseRetryAfter, readLimited, Transport, type RetryPolicy } from '../src/oci/transport.ts'
import { startFakeServer, type FakeServer } from './support/fake-registry.ts'

const POLICY: RetryPolicy = { retries: 3, baseDelayMs: 5, factor: 2, maxDelayMs: 2_000 }
let server: FakeServer
const script = new Map<string, ((res: import('node:http').ServerResponse) => void)[]>()

beforeAll(async () => {
  server = await startFakeServer((req, res) => {
    const steps = script.get(req.url ?? '')
    const step = steps?.shift()
    if (!step) return false
    step(res)
  })
})
afterAll(async () => {
  await server.stop()
})

function transport(debug: string[] = [], agent?: Agent): Transport {
  return new Transport({ retry: POLICY, debug: (m) => debug.push(m), ...(agent ? { dispatcher: agent } : {}) })
}

async function get(t: Transport, path: string): Promise<string> {
  return t.exchange(
    () => ({ method: 'GET', url: new URL(path, server.url) }),
    async (res) => {
      const body = (await readLimited(res, 1 << 20, 'body')).toString()
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${body}`)
      return body
    }
  )
}

const ok = (body: string) => (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-length': String(body.length) }).end(body)
const status =
  (code: number, headers: Record<string, string> = {}) =>
  (res: import('node:http').ServerResponse) =>
    res.writeHead(code, headers).end()

describe('Transport retries', () => {
  it('retries 502/503 and succeeds', async () => {
    script.set('/flaky', [status(503), status(502), ok('fine')])
    const t = transport()
    expect(await get(t, '/flaky')).toBe('fine')
    expect(t.requestCount).toBe(3)
    await t.close()
  })

  it('honours Retry-After on 429', async () => {
    const debug: string[] = []
    script.set('/limited', [status(429, { 'retry-after': '1' }), ok('after wait')])
    const t = transport(debug)
    expect(await get(t, '/limited')).toBe('after wait')
    expect(debug.some((m) => m.startsWith('retrying in 1000 ms'))).toBe(true)
    await t.close()
  })

  it('gives up after the policy and reports the last status', async () => {
    script.set('/down', [status(500), status(500), status(500), status(500), status(500)])
    const t = transport()
    await expect(get(t, '/down')).rejects.toThrow('HTTP 500')
    expect(t.requestCount).toBe(POLICY.retries + 1)
    await t.close()
  })

  it('does not retry a client error', async () => {
    script.set('/bad', [status(400), ok('never')])
    const t = transport()
    await expect(get(t, '/bad')).rejects.toThrow('HTTP 400')
    expect(t.requestCount).toBe(1)
    await t.close()
  })

  it('retries a connection reset in the middle of a body', async () => {
    script.set('/cut', [
      (res) => {
        res.writeHead(200, { 'content-length': '1000' })
        res.write('partial')
        setTimeout(() => res.socket?.destroy(), 10)
      },
      ok('whole body')
    ])
    const t = transport()
    expect(await get(t, '/cut')).toBe('whole body')
    expect(t.requestCount).toBe(2)
    await t.close()
  })

  it('times out a stalled response instead of hanging, with a clear error', async () => {
    script.set('/stall', [() => {}, () => {}, () => {}, () => {}])
    const t = transport([], new Agent({ headersTimeout: 100, bodyTimeout: 100 }))
    await expect(get(t, '/stall')).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining(`GET ${server.url}/stall: timed out`) })
    await t.close()
  })
})

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000)
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000)
    expect(parseRetryAfter('soon')).toBeUndefined()
    expect(parseRetryAfter(undefined)).toBeUndefined()
  })
})

/**
 * A bare HTTP/1.1 server on a socket of its own: answers HEAD with `headBody` sent after the headers when given
 * (as a misbehaving server might), everything else with 200 and the path as body; counts connections.
 */
async function startRawServer(headBody?: string): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    let pending = ''
    socket.on('data', (data: Buffer) => {
      pending += data.toString('latin1')
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const [method, path] = pending.slice(0, end).split(' ') as [string, string]
        pending = pending.slice(end + 4)
        if (method === 'HEAD') socket.write(`HTTP/1.1 404 Not Found\r\nContent-Length: ${headBody?.length ?? 7}\r\n\r\n${headBody ?? ''}`)
        else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    url,
    connections: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}

async function head(t: Transport, url: string): Promise<number> {
  return t.exchange(
    () => ({ method: 'HEAD', url: new URL(url) }),
    async (res) => {
      await res.body.dump()
      return res.status
    }
  )
}

describe('Transport connections', () => {
  it('keeps its connection after a HEAD: probes of tags and blobs cost no new connection each', async () => {
    const raw = await startRawServer()
    const t = new Transport({ retry: POLICY, dispatcher: new Agent({ connections: 1 }) })
    try {
      for (let i = 0; i < 10; i++) expect(await head(t, `${raw.url}/v2/app/blobs/sha256:${i}`)).toBe(404)
      expect(await get(t, `${raw.url}/after`)).toBe('/after')
      // undici's default closes the connection after each HEAD (nodejs/undici#258): 11 connections, not 1.
      expect(raw.connections()).toBe(1)
    } finally {
      await t.close()
      await raw.close()
    }
  })

  it('is not garbled by a body sent with a HEAD answer: the next answer is still the right one', async () => {
    const raw = await startRawServer('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged')
    const t = new Transport({ retry: POLICY, dispatcher: new Agent({ connections: 1 }) })
    try {
      expect(await head(t, `${raw.url}/v2/app/manifests/sha256-x.sig`)).toBe(404)
      expect(await get(t, `${raw.url}/v2/app/manifests/prod`)).toBe('/v2/app/manifests/prod')
      expect(await head(t, `${raw.url}/v2/app/manifests/sha256-y.sig`)).toBe(404)
      expect(await get(t, `${raw.url}/v2/app/manifests/staging`)).toBe('/v2/app/manifests/staging')
    } finally {
      await t.close()
      await raw.close()
    }
  })
})
