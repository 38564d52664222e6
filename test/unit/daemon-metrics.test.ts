// SPDX-License-Identifier: GPL-2.0-only
// The exposition writer and the metrics page: escapes, values, histograms, every family declared once
// and kept together; the whole page read back by a strict text-format parser. The rate estimator's
// arithmetic.
import t from 'tap'
import { Exposition, formatValue, Histogram, RateEstimator, renderMetrics, type MetricsSnapshot } from '../../src/daemon/metrics'
import { parsePrometheus, sampleValue } from '../helpers/prom'

t.test('values and escapes as the text format spells them', async (t) => {
  t.equal(formatValue(1), '1')
  t.equal(formatValue(0.25), '0.25')
  t.equal(formatValue(NaN), 'NaN')
  t.equal(formatValue(Infinity), '+Inf')
  t.equal(formatValue(-Infinity), '-Inf')
  t.equal(formatValue(1e21), '1e+21')
  const e = new Exposition()
    .family('x_total', 'counter', 'help with \\ backslash\nand newline')
    .sample('x_total', { path: 'a"b\\c\nd' }, 3)
  t.equal(e.text(), '# HELP x_total help with \\\\ backslash\\nand newline\n# TYPE x_total counter\nx_total{path="a\\"b\\\\c\\nd"} 3\n')
  const back = parsePrometheus(e.text())
  t.same(back.get('x_total')!.samples[0]!.labels, { path: 'a"b\\c\nd' }, 'the parser undoes the escapes')
  t.equal(back.get('x_total')!.help, 'help with \\ backslash\nand newline')
})

t.test('bad names are refused, families are declared before samples and once per type', async (t) => {
  const e = new Exposition()
  t.throws(() => e.family('9bad', 'gauge', 'x'), { code: 'EARG' })
  t.throws(() => e.sample('undeclared', undefined, 1), { code: 'EARG' })
  e.family('ok', 'gauge', 'x')
  t.throws(() => e.family('ok', 'counter', 'x'), { code: 'EARG' })
  t.throws(() => e.sample('ok', { 'bad-label': 'x' }, 1), { code: 'EARG' })
  t.throws(() => e.sample('ok', { __reserved: 'x' }, 1), { code: 'EARG' })
})

t.test('samples of one family stay together even when added interleaved', async (t) => {
  const e = new Exposition().family('a', 'gauge', 'a').family('b', 'gauge', 'b')
  e.sample('a', { i: 1 }, 1).sample('b', undefined, 2).sample('a', { i: 2 }, 3)
  const text = e.text()
  t.match(text, /a\{i="1"\} 1\na\{i="2"\} 3\n# HELP b/)
  t.doesNotThrow(() => parsePrometheus(text))
})

t.test('histograms: cumulative buckets, +Inf, sum and count', async (t) => {
  const h = new Histogram([0.01, 0.1, 1])
  for (const v of [0.005, 0.05, 0.05, 0.5, 5]) h.observe(v)
  const text = new Exposition().family('lat_seconds', 'histogram', 'l').histogram('lat_seconds', { k: 'v' }, h).text()
  const f = parsePrometheus(text)
  const buckets = f.get('lat_seconds')!.samples.filter((s) => s.name === 'lat_seconds_bucket').map((s) => [s.labels.le, s.value])
  t.same(buckets, [['0.01', 1], ['0.1', 3], ['1', 4], ['+Inf', 5]])
  t.equal(sampleValue(f, 'lat_seconds', { k: 'v' }, 'lat_seconds_count'), 5)
  t.ok(Math.abs(sampleValue(f, 'lat_seconds', { k: 'v' }, 'lat_seconds_sum')! - 5.605) < 1e-9)
})

t.test('the parser itself rejects what Prometheus rejects', async (t) => {
  t.throws(() => parsePrometheus('x 1\n'), /without a TYPE/)
  t.throws(() => parsePrometheus('# TYPE x gauge\nx{a="1} 1\n'), /unterminated|expected/)
  t.throws(() => parsePrometheus('# TYPE x gauge\nx{a="\\q"} 1\n'), /bad escape/)
  t.throws(() => parsePrometheus('# TYPE x gauge\nx one\n'), /bad value/)
  t.throws(() => parsePrometheus('# TYPE x gauge\n# TYPE y gauge\nx 1\n'), /not together/)
  t.throws(() => parsePrometheus('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="2"} 1\nh_bucket{le="+Inf"} 2\nh_count 2\n'), /cumulative/)
  t.throws(() => parsePrometheus('# TYPE x gauge\nx 1'), /newline/)
})

const snapshot = (): MetricsSnapshot => ({
  daemon: { version: '0.1.0', startTimeS: 1700000000, configFile: '/etc/xvs/xvs.yaml', generation: 3, reloads: { ok: 2, failed: 1 }, lastReloadOk: false, applies: { ok: 7, failed: 0 } },
  dataplane: { progId: 42, connsMapId: 17, abiVersion: 1, connTableSize: 262144 },
  services: [{
    key: 'tcp:10.0.0.100:80', name: 'web', quorumUp: true, sorryActive: false, upWeight: 3,
    stats: { conns: 10, packetsIn: 100, bytesIn: 10000, packetsOut: 0, bytesOut: 0 },
    rates: { conns: 1.5, packetsIn: 12.25, bytesIn: 1000, packetsOut: 0, bytesOut: 0 },
    reals: [
      { key: '10.0.0.11:80', weight: 1, configuredWeight: 1, health: 'up', inService: true, stats: { conns: 4, packetsIn: 40, bytesIn: 4000, packetsOut: 0, bytesOut: 0 }, active: 2, inactive: 1, checks: { ok: 9, failed: 1, transitions: 2, lastLatencyMs: 1.5 } },
      { key: '10.0.0.12:80', name: 'web2', weight: 0, configuredWeight: 2, health: 'down', inService: false, checks: { ok: 0, failed: 3, transitions: 1 } },
      { key: '10.0.0.13:80', weight: 2, configuredWeight: 2, health: 'unchecked', inService: true },
    ],
  }, {
    key: 'udp:[2001:db8::1]:53', quorumUp: false, sorryActive: true, upWeight: 0,
    reals: [{ key: '[2001:db8::9]:53', name: 'sorry', weight: 1, configuredWeight: 1, health: 'sorry', inService: true }],
  }],
  counters: { rx: 1000, pass_not_ip: 3, drop_no_backend: 2 },
  checkLatency: Object.assign(new Histogram([0.001, 0.01]), {}),
  checksInFlight: 4,
  sweeper: { passes: 5, scanned: 500, expired: 20, stale: 1, raced: 0, errors: 0, lastDurationMs: 12, lastEntries: 100 },
})

t.test('the daemon page parses and holds each figure once, labelled by service and real server', async (t) => {
  const text = renderMetrics(snapshot())
  const f = parsePrometheus(text)
  const web = { service: 'tcp:10.0.0.100:80' }
  const rs1 = { ...web, real: '10.0.0.11:80' }
  t.equal(sampleValue(f, 'xvs_service_connections_total', web), 10)
  t.equal(sampleValue(f, 'xvs_service_packets_total', { ...web, direction: 'in' }), 100)
  t.equal(sampleValue(f, 'xvs_service_bytes_total', { ...web, direction: 'out' }), 0)
  t.equal(sampleValue(f, 'xvs_service_connection_rate', web), 1.5)
  t.equal(sampleValue(f, 'xvs_service_packet_rate', { ...web, direction: 'in' }), 12.25)
  t.equal(f.get('xvs_service_connections_total')!.samples[0]!.labels.name, 'web', 'the service name is a label')
  t.equal(sampleValue(f, 'xvs_real_connections_total', rs1), 4)
  t.equal(sampleValue(f, 'xvs_real_active_connections', rs1), 2)
  t.equal(sampleValue(f, 'xvs_real_inactive_connections', rs1), 1)
  t.equal(sampleValue(f, 'xvs_real_health', rs1), 1)
  t.equal(sampleValue(f, 'xvs_real_health', { ...web, real: '10.0.0.12:80' }), 0)
  t.equal(sampleValue(f, 'xvs_real_health', { ...web, real: '10.0.0.13:80' }), undefined, 'no health for an unchecked server')
  t.equal(sampleValue(f, 'xvs_real_in_service', { ...web, real: '10.0.0.12:80' }), 0)
  t.equal(sampleValue(f, 'xvs_real_configured_weight', { ...web, real: '10.0.0.12:80' }), 2)
  t.equal(sampleValue(f, 'xvs_real_checks_total', { ...rs1, result: 'failed' }), 1)
  t.equal(sampleValue(f, 'xvs_real_check_latency_seconds', rs1), 0.0015)
  t.equal(sampleValue(f, 'xvs_real_connections_total', { ...web, real: '10.0.0.12:80' }), 0, 'a server without statistics counts zero')
  t.equal(sampleValue(f, 'xvs_service_sorry_active', { service: 'udp:[2001:db8::1]:53' }), 1)
  t.equal(sampleValue(f, 'xvs_service_quorum_up', { service: 'udp:[2001:db8::1]:53' }), 0)
  t.equal(sampleValue(f, 'xvs_dataplane_events_total', { event: 'drop_no_backend' }), 2)
  t.equal(f.get('xvs_dataplane_events_total')!.type, 'counter')
  t.equal(sampleValue(f, 'xvs_dataplane_dropped_packets_total', { reason: 'no_backend' }), 2, 'drops by reason')
  t.equal(f.get('xvs_dataplane_dropped_packets_total')!.samples.length, 1, 'only the drop_ counters')
  t.equal(sampleValue(f, 'xvs_sweeper_deleted_total', { reason: 'expired' }), 20)
  t.equal(sampleValue(f, 'xvs_sweeper_last_duration_seconds'), 0.012)
  t.equal(sampleValue(f, 'xvs_conn_table_entries'), 100)
  t.equal(sampleValue(f, 'xvs_conn_table_max_entries'), 262144)
  t.equal(sampleValue(f, 'xvs_dataplane_info', { prog_id: '42', conns_map_id: '17' }), 1)
  t.equal(sampleValue(f, 'xvs_config_last_reload_success'), 0)
  t.equal(sampleValue(f, 'xvs_config_reloads_total', { result: 'failed' }), 1)
  t.equal(sampleValue(f, 'xvs_health_checks_in_flight'), 4)
  t.equal(sampleValue(f, 'xvs_health_check_duration_seconds', {}, 'xvs_health_check_duration_seconds_count'), 0)
  for (const fam of f.values()) t.ok(fam.help.length > 0, `${fam.name} has help`)
})

t.test('the rate estimator: per-second rates, smoothed a quarter at a time, restarted by a reset', async (t) => {
  const r = new RateEstimator()
  const at = (conns: number) => new Map([['k', { conns, packetsIn: conns * 10, bytesIn: 0, packetsOut: 0, bytesOut: 0 }]])
  r.sample(0, at(0))
  t.same(r.rates('k')!.conns, 0, 'first sample: no rate yet')
  r.sample(2000, at(200)) // 100/s
  t.equal(r.rates('k')!.conns, 25, 'a quarter of the way to 100/s')
  t.equal(r.rates('k')!.packetsIn, 250)
  r.sample(4000, at(400))
  t.equal(r.rates('k')!.conns, 43.75)
  r.sample(6000, at(0))
  t.equal(r.rates('k')!.conns, 43.75, 'a counter that went back (zeroed) restarts without a negative rate')
  r.sample(8000, new Map())
  t.equal(r.rates('k'), undefined, 'a key no longer sampled is forgotten')
})
