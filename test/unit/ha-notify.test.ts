// SPDX-License-Identifier: GPL-2.0-only
// keepalived's notify scripts: the command for the state as written, then `notify` with TYPE NAME
// STATE PRIORITY; command lines split into words like a shell does, executed without one.
import t from 'tap'
import { notifyCommands, splitCommand } from '../../src/ha/notify'

t.test('splitCommand', async (t) => {
  t.same(splitCommand('/usr/local/bin/x.sh'), ['/usr/local/bin/x.sh'])
  t.same(splitCommand('  /x  a   b '), ['/x', 'a', 'b'])
  t.same(splitCommand(`/x "two words" 'single $quoted' back\\ slash ""`), ['/x', 'two words', 'single $quoted', 'back slash', ''])
  t.same(splitCommand('/x "say \\"hi\\""'), ['/x', 'say "hi"'])
  t.same(splitCommand('/x a"b c"d'), ['/x', 'ab cd'])
  t.throws(() => splitCommand('/x "open'), { code: 'EARG' })
  t.throws(() => splitCommand("/x 'open"), { code: 'EARG' })
})

t.test('notifyCommands: keepalived order and arguments', async (t) => {
  const n = { master: '/etc/k/master.sh arg1', backup: '/etc/k/backup.sh', fault: '"/etc/k/fault script.sh"', stop: '/etc/k/stop.sh', any: '/etc/k/any.sh --from-xvs' }
  t.same(notifyCommands(n, 'INSTANCE', 'VI_1', 'MASTER', 150), [['/etc/k/master.sh', 'arg1'], ['/etc/k/any.sh', '--from-xvs', 'INSTANCE', 'VI_1', 'MASTER', '150']])
  t.same(notifyCommands(n, 'INSTANCE', 'VI_1', 'FAULT', 100), [['/etc/k/fault script.sh'], ['/etc/k/any.sh', '--from-xvs', 'INSTANCE', 'VI_1', 'FAULT', '100']])
  t.same(notifyCommands(n, 'GROUP', 'G1', 'STOP', 0), [['/etc/k/stop.sh'], ['/etc/k/any.sh', '--from-xvs', 'GROUP', 'G1', 'STOP', '0']])
  t.same(notifyCommands({ backup: '/b' }, 'INSTANCE', 'VI_1', 'MASTER', 1), [], 'nothing for a state without a script')
  t.same(notifyCommands({ any: '/a' }, 'INSTANCE', 'VI_1', 'BACKUP', 90), [['/a', 'INSTANCE', 'VI_1', 'BACKUP', '90']])
})
