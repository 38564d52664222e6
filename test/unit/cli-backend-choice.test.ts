// SPDX-License-Identifier: GPL-2.0-only
// xvs and xvsadm go through the daemon's control socket while one may run, else write the maps.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { withDaemon, SocketBackend } from '../../src/cli/socket'
import { DirectBackend } from '../../src/cli/direct'

t.test('the socket decides', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xvs-sock-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const sock = path.join(dir, 'xvs.sock')
  const saved = process.env.XVS_SOCKET
  process.env.XVS_SOCKET = sock
  t.teardown(() => { if (saved === undefined) delete process.env.XVS_SOCKET; else process.env.XVS_SOCKET = saved })
  const direct = new DirectBackend({ autoLoad: 'never' })
  t.equal(withDaemon(direct), direct, 'no socket: the maps directly')
  fs.writeFileSync(sock, '')
  t.ok(withDaemon(direct) instanceof SocketBackend, 'a socket: through the daemon')
})
