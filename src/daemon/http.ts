// SPDX-License-Identifier: GPL-2.0-only
// The Prometheus endpoint: GET /metrics on a TCP address (127.0.0.1:9110 by default, so only the
// director itself can scrape unless the operator says otherwise). Nothing else is served.
import http from 'node:http'
import net from 'node:net'
import { ArgumentError, XvsError } from '../errors'
import { silentLogger, type Logger } from '../log'
import { CONTENT_TYPE } from './metrics'

export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:9110'

/** "127.0.0.1:9110", "[::1]:9110", ":9110" (every address) -> host and port. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.trim())
  const host = m ? (m[1] ?? m[2] ?? '') : ''
  const port = m ? Number(m[3]) : NaN
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535 || (host !== '' && net.isIP(host) === 0)) {
    throw new ArgumentError(`metrics address ${JSON.stringify(text)} is not ADDRESS:PORT`, { hint: 'e.g. 127.0.0.1:9110, [::1]:9110, or off' })
  }
  return { host: host === '' ? '::' : host, port }
}

export class MetricsServer {
  private server: http.Server | undefined
  private readonly log: Logger

  constructor(private readonly render: () => string, opts: { log?: Logger } = {}) {
    this.log = (opts.log ?? silentLogger).child({ component: 'metrics' })
  }

  /** Listen; resolves with the bound address (port 0 picks a free one). */
  async listen(address: string): Promise<{ host: string; port: number }> {
    const { host, port } = parseListenAddress(address)
    const server = http.createServer((req, res) => this.serve(req, res))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port }, () => { server.off('error', reject); resolve() })
    }).catch((e: unknown) => {
      throw new XvsError('EMETRICS', `cannot serve metrics on ${address}: ${(e as Error).message}`, { hint: 'give another --metrics address, or --metrics off', cause: e })
    })
    server.on('error', (err) => this.log.error({ err }, 'metrics server error'))
    this.server = server
    const a = server.address() as net.AddressInfo
    this.log.info({ address: a.address, port: a.port }, 'metrics endpoint listening')
    return { host: a.address, port: a.port }
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (url !== '/metrics') {
      res.writeHead(url === '/' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' })
        .end(url === '/' ? 'xvs daemon: metrics at /metrics\n' : 'not found; metrics are at /metrics\n')
      return
    }
    let body: string
    try {
      body = this.render()
    } catch (err) {
      this.log.error({ err }, 'rendering metrics failed')
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${(err as Error).message}\n`)
      return
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  async close(): Promise<void> {
    const s = this.server
    if (!s) return
    this.server = undefined
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
}
