// SPDX-License-Identifier: GPL-2.0-only
// Next hops in bulk: the output of one `ip -j -force -batch -` split back into its commands.
import t from 'tap'
import { parseBatchOutput } from '../../src/dataplane/neigh'

t.test('successes and failures, matched to their commands', async (t) => {
  const out = parseBatchOutput(4,
    '[{"dst":"10.0.0.1","dev":"eth0"}]\n[{"dst":"10.0.0.3","dev":"eth0"}]\n[]\n',
    'RTNETLINK answers: Network is unreachable\nCommand failed -:2\n')
  t.same(out?.map((x) => (x instanceof Error ? `error: ${x.message}` : x.json)), [
    [{ dst: '10.0.0.1', dev: 'eth0' }], 'error: RTNETLINK answers: Network is unreachable', [{ dst: '10.0.0.3', dev: 'eth0' }], [],
  ], 'the failed command gets ip\'s message, the others their JSON in order')
})

t.test('several failures, the first and the last', async (t) => {
  const out = parseBatchOutput(3, '[{"dst":"10.0.0.2"}]\n',
    'Error: any valid prefix is expected rather than "x".\nCommand failed -:1\nRTNETLINK answers: No route to host\nCommand failed -:3\n')
  t.same(out?.map((x) => (x instanceof Error ? x.message : 'ok')), ['Error: any valid prefix is expected rather than "x".', 'ok', 'RTNETLINK answers: No route to host'])
})

t.test('output of another shape is refused (the caller runs the commands one by one)', async (t) => {
  t.equal(parseBatchOutput(2, '[]\n', ''), undefined, 'a line missing')
  t.equal(parseBatchOutput(1, '[]\n[]\n', ''), undefined, 'a line too many')
  t.equal(parseBatchOutput(1, 'not json\n', ''), undefined, 'not JSON')
  t.equal(parseBatchOutput(1, '', 'oops\nCommand failed -:5\n'), undefined, 'a failure beyond the commands')
})
