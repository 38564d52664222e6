// SPDX-License-Identifier: GPL-2.0-only
// keepalived.conf: virtual_server (IP PORT, fwmark, group), checkers as health-check data, includes, the
// raw blocks left for the HA parser, and located errors.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/errors'
import { parseKeepalived } from '../../src/config/keepalived'
import { incompleteNote } from '../../src/model'

const dir = join(__dirname, '..', 'fixtures', 'config')
const file = join(dir, 'keepalived.conf')

t.test('a multi-service keepalived.conf', async (t) => {
  const { model, format, raw, warnings } = parseKeepalived(readFileSync(file, 'utf8'), file)
  t.equal(format, 'keepalived')
  t.same(warnings, [])
  t.same(raw.map((b) => [b.keyword, b.args]), [['global_defs', []], ['vrrp_sync_group', ['VG1']], ['vrrp_instance', ['VI_WEB']]], 'HA blocks kept raw')
  t.match(raw[2]!.children, [{ keyword: 'state', args: ['MASTER'] }, { keyword: 'interface', args: ['eth0'] }])
  t.match(raw[2]!.where, /keepalived.conf:17:1$/)
  t.equal(model.services.length, 4)
  const [web, db, mark, dns] = model.services

  t.match(web, {
    kind: 'tcp', vip: '192.0.2.10', port: 80, scheduler: 'wlc',
    persistence: { timeout: 600, netmask: '255.255.255.0' },
    sorryServer: { address: '10.0.9.9', port: 80, method: 'dr' },
  })
  t.same(web!.realServers[0], {
    address: '10.0.1.11', port: 80, weight: 3, method: 'dr', upperThreshold: 0, lowerThreshold: 0,
    check: {
      type: 'http', interval: 6, timeout: 3, rise: 1, fall: 1, retry: 3, retryDelay: 2, reentry: 0, onFailure: 'quiesce',
      urls: [{ path: '/healthz', status: 200 }, { path: '/index.html', digest: '9b3a0c85a887a256d6939da88aabd8cd' }],
    },
  }, 'HTTP_GET with two urls; the virtual server\'s inhibit_on_failure quiesces')
  t.match(web!.realServers[1], { upperThreshold: 2000, lowerThreshold: 1500 })

  t.match(db, { scheduler: 'wrr', quorum: { weight: 2, hysteresis: 1 } })
  t.same(db!.realServers.map((r) => [r.port, r.method, r.check]), [
    [13306, 'nat', { type: 'tcp', port: 13306, interval: 10, timeout: 5, rise: 1, fall: 1, retry: 1, retryDelay: 1, reentry: 0, onFailure: 'remove' }],
    [13306, 'nat', { type: 'tcp', port: 13306, interval: 10, timeout: 5, rise: 1, fall: 1, retry: 2, retryDelay: 1, reentry: 0, onFailure: 'quiesce' }],
  ], 'TCP_CHECK; NAT is the method, inhibit_on_failure per real server')

  t.match(mark, { kind: 'group', id: 80, family: 4, matches: [], incomplete: incompleteNote(80), scheduler: 'rr', persistence: { timeout: 360 } })
  t.match(mark!.realServers[0]!.check, { type: 'external', command: '/usr/local/bin/check_web.sh 10.0.1.11', timeout: 8, interval: 20, dynamic: false })

  t.match(dns, {
    kind: 'group', name: 'DNS', id: 1, scheduler: 'sh', schedFlags: ['sh-port'],
    matches: [
      { vip: '192.0.2.53', protocol: 'udp', fromPort: 53, toPort: 53 },
      { vip: '192.0.2.54', protocol: 'udp', fromPort: 53, toPort: 53 },
    ],
  }, 'from the included file: a virtual_server_group with an address range')
  t.same(dns!.realServers.map((r) => r.method), ['tun', 'tun'])
})

/** Parse `text` as bad.conf with includes served from `files`. */
function parse(text: string, files: Record<string, string> = {}) {
  return parseKeepalived(text, '/etc/keepalived/bad.conf', {
    readFile: (p) => {
      if (p in files) return files[p]!
      throw Object.assign(new Error('no such file'), { code: 'ENOENT' })
    },
    readdir: (d) => Object.keys(files).filter((p) => p.startsWith(`${d}/`)).map((p) => p.slice(d.length + 1)),
  })
}

function rejects(t: tap.Test, text: string, where: string, field: string, message: RegExp, files?: Record<string, string>): void {
  const w = `/etc/keepalived/${where}`
  const err = t.throws(() => parse(text, files), { constructor: ConfigError, where: w, field, message }, `${where} ${field}`) as ConfigError | undefined
  if (err) t.ok(err.message.startsWith(`${w}: ${field}: `), err.message)
}

const vs = (body: string) => `virtual_server 192.0.2.10 80 {\n    lb_kind DR\n${body}}\n`

t.test('includes: relative paths, globs, missing files, loops', async (t) => {
  const inc = { '/etc/keepalived/conf.d/a.conf': vs('    real_server 10.0.1.11 80 {\n    }\n'), '/etc/keepalived/conf.d/b.txt': 'junk {' }
  const { model } = parse('include conf.d/*.conf\n', inc)
  t.equal(model.services.length, 1)
  t.match(parse('include conf.d/*.none\n', inc).warnings, [{ where: '/etc/keepalived/bad.conf:1:9', message: /no file matches/ }])
  rejects(t, '\n  include missing.conf\n', 'bad.conf:2:11', 'include', /cannot read \/etc\/keepalived\/missing.conf \(ENOENT\); fix the path \(relative paths are relative to \/etc\/keepalived\)/)
  rejects(t, 'include bad.conf\n', 'bad.conf:1:9', 'include', /includes itself/, { '/etc/keepalived/bad.conf': 'include bad.conf\n' })
})

t.test('tokens: comments, quotes, braces on their own line', async (t) => {
  const text = `virtual_server 192.0.2.10 80   # web
{
    lb_kind DR   ! DR
    real_server 10.0.1.11 80
    {
        MISC_CHECK { misc_path "/bin/check \\"x\\" #1" }
    }
}
`
  const rs = parse(text).model.services[0]!.realServers[0]!
  t.match(rs.check, { type: 'external', command: '/bin/check "x" #1' })
})

t.test('skipped and ignored keywords', async (t) => {
  const { warnings, raw } = parse(`vrrp_script chk { script "true" }\nstatic_routes {\n  10.0.0.0/8 via 192.0.2.1\n}\n${vs('    alpha\n    real_server 10.0.1.11 80 {\n        notify_down /bin/true\n    }\n')}`)
  t.same(raw.map((b) => b.keyword), ['vrrp_script', 'static_routes'])
  t.same(warnings.map((w) => w.message), ['alpha is not used by xvs; ignored', 'notify_down scripts are not run by xvs; ignored'])
})

t.test('malformed keepalived.conf: place and field', async (t) => {
  rejects(t, vs('    lb_algoo wrr\n'), 'bad.conf:3:5', 'virtual_server.lb_algoo', /unknown keyword 'lb_algoo' in virtual_server; did you mean 'lb_algo'\?/)
  rejects(t, 'virtual_servr 192.0.2.10 80 {\n}\n', 'bad.conf:1:1', 'virtual_servr', /did you mean 'virtual_server'\?/)
  rejects(t, 'virtual_server 192.0.2.10 80 {\n  real_server 10.0.1.11 80 {\n', 'bad.conf:2:3', 'real_server', /the block opened here is not closed; add '}'/)
  rejects(t, '}\n', 'bad.conf:1:1', '}', /unexpected '}'/)
  rejects(t, vs('    lb_kind MASQ\n'), 'bad.conf:3:5', 'virtual_server.lb_kind', /is given twice \(first at \/etc\/keepalived\/bad.conf:2:5\); keep one/)
  rejects(t, 'virtual_server 192.0.2.10 80 {\n    lb_kind MASQ\n}\n', 'bad.conf:2:13', 'virtual_server.lb_kind', /unknown \[MASQ\] routing method; use NAT, DR or TUN/)
  rejects(t, vs('    protocol SCTP\n'), 'bad.conf:3:14', 'virtual_server.protocol', /SCTP is not supported by xvs/)
  rejects(t, vs('    real_server 10.0.1.11 80 {\n        weight heavy\n    }\n'), 'bad.conf:4:16', 'real_server.weight', /'heavy' is not a whole number/)
  rejects(t, vs('    real_server 10.0.1.11 80 {\n        TCP_CHECK {\n        }\n        HTTP_GET {\n        }\n    }\n'), 'bad.conf:6:9', 'real_server', /has TCP_CHECK and HTTP_GET; xvs runs one checker per real server/)
  rejects(t, vs('    real_server 10.0.1.11 80 {\n        SMTP_CHECK {\n        }\n    }\n'), 'bad.conf:4:9', 'real_server.SMTP_CHECK', /is not supported by xvs/)
  rejects(t, vs('    real_server 10.0.1.11 80 {\n        HTTP_GET {\n            connect_timeout 3\n        }\n    }\n'), 'bad.conf:4:9', 'HTTP_GET', /has no url block/)
  rejects(t, vs('    real_server 10.0.1.11 80 {\n        MISC_CHECK {\n            misc_path "/bin/x\n        }\n    }\n'), 'bad.conf:5:23', 'string', /unterminated quoted string/)
  rejects(t, 'virtual_server group WEB {\n}\nvirtual_server_group WBE {\n  192.0.2.1 80\n}\n', 'bad.conf:1:22', 'virtual_server.group', /virtual_server_group 'WEB' is not defined; did you mean 'WBE'\?/)
  rejects(t, 'virtual_server_group G {\n  192.0.2.1-300 80\n}\nvirtual_server group G {\n}\n', 'bad.conf:2:3', 'virtual_server_group.G', /is not a range of at most 256 addresses/)
})

t.test('validation errors point at the keepalived token', async (t) => {
  rejects(t, vs('    real_server 10.0.1.11 80 {\n        weight 70000\n    }\n'), 'bad.conf:4:16', 'services[0].realServers[0].weight', /70000 is out of range; use 0..65535/)
  rejects(t, 'virtual_server 192.0.2.10 80 {\n    lb_algo wrrr\n}\n', 'bad.conf:2:13', 'services[0].scheduler', /'wrrr' is not a scheduler; did you mean 'wrr'\?/)
  rejects(t, vs('    real_server 10.0.1.11 8080 {\n    }\n'), 'bad.conf:3:27', 'services[0].realServers[0].port', /8080 differs from the service port 80; dr cannot change the port/)
  rejects(t, vs('    real_server 2001:db8::11 80 {\n    }\n'), 'bad.conf:3:5', 'services[0].realServers[0].address', /is IPv6 but the service is IPv4/)
  rejects(t, vs('    real_server 10.0.1.11 80 {\n    }\n    real_server 10.0.1.11 80 {\n    }\n'), 'bad.conf:5:5', 'services[0].realServers[1]', /duplicate of realServers\[0\]/)
  rejects(t, vs('    persistence_timeout 60\n    persistence_granularity 255.0.255.0\n'), 'bad.conf:4:29', 'services[0].persistence.netmask', /contiguous dotted mask/)
})
