// SPDX-License-Identifier: GPL-2.0-only
// XDP attachment on a veth in a private namespace: link attach -> query -> atomic update ->
// pin -> detach; the netlink attachment with and without XDP_FLAGS_REPLACE; interface errors.
import t from 'tap'
import path from 'node:path'
import { BpfObject, BpfProgram, XdpLink, xdpAttach, xdpDetach, xdpQuery, withNetns, ifindexOf, ifnameOf, interfaces } from '../../src/bpf'
import { ArgumentError } from '../../src/errors'
import { needsRoot, fixture, tempBpffs, tempNetns, sh } from '../helpers/root'

function loadTwo(): { a: BpfProgram; b: BpfProgram } {
  const obj = BpfObject.open(fixture('maps'))
  obj.setPinPath('fixture_pinned', null)
  obj.load()
  const a = obj.program('xdp_verdict')
  const b = obj.program('xdp_swap_macs')
  obj.close()
  return { a, b }
}

t.test('bpf_link: attach, query, update, pin, detach', needsRoot, async (t) => {
  const ns = tempNetns(t)
  const bpffs = tempBpffs(t)
  const { a, b } = loadTwo()
  t.teardown(() => { a.close(); b.close() })
  withNetns(ns.name, () => {
    t.equal(xdpQuery(ns.veth).mode, 'none', 'nothing attached at first')
    const link = XdpLink.attach(a, ns.veth, { mode: 'native' })
    let q = xdpQuery(ns.veth)
    t.equal(q.mode, 'native', 'attached in driver (native) mode')
    t.equal(q.progId, a.id, 'the attached program is a')
    const li = link.info()
    t.equal(li.progId, a.id, 'link info names the program')
    t.equal(li.ifindex, ifindexOf(ns.veth), 'link info names the interface')
    t.throws(() => XdpLink.attach(b, ns.veth), { name: 'BpfError' }, 'a second link on the same interface is refused')
    t.throws(() => xdpAttach(ns.veth, b), { name: 'BpfError', hint: /attached/ }, 'a netlink attach over a link is refused')

    link.update(b)
    q = xdpQuery(ns.veth)
    t.equal(q.progId, b.id, 'update swapped in b atomically')
    t.throws(() => link.update(a, { expected: a }), { name: 'BpfError', code: 'EPERM' }, 'compare-and-swap with the wrong expected program fails')
    t.equal(xdpQuery(ns.veth).progId, b.id, 'and leaves b attached')
    link.update(a, { expected: b })
    t.equal(xdpQuery(ns.veth).progId, a.id, 'compare-and-swap with the right expected program succeeds')

    // A pinned link outlives its fd.
    const pin = path.join(bpffs, 'xdp_link')
    link.pin(pin)
    link.close()
    t.equal(xdpQuery(ns.veth).progId, a.id, 'pinned link keeps the program attached after close')
    const again = XdpLink.fromPin(pin)
    t.equal(again.info().progId, a.id, 'the link reopened from its pin')
    again.detach()
    t.equal(xdpQuery(ns.veth).mode, 'none', 'detach removes the program')
    again.close()
    sh(['rm', '-f', pin])
  })
})

t.test('bpf_link in generic mode', needsRoot, async (t) => {
  const ns = tempNetns(t)
  const { a } = loadTwo()
  t.teardown(() => a.close())
  withNetns(ns.name, () => {
    const link = XdpLink.attach(a, ns.peer, { mode: 'generic' })
    const q = xdpQuery(ns.peer)
    t.equal(q.mode, 'generic', 'generic (skb) mode')
    t.equal(q.genericProgId, a.id, 'generic program id')
    link.close()
    t.equal(xdpQuery(ns.peer).mode, 'none', 'an unpinned link goes with its last fd')
  })
})

t.test('netlink attachment: persists without fds, atomic replace, detach', needsRoot, async (t) => {
  const ns = tempNetns(t)
  const { a, b } = loadTwo()
  withNetns(ns.name, () => {
    const ifindex = ifindexOf(ns.veth)
    t.equal(ifnameOf(ifindex), ns.veth, 'ifindex <-> name inside the namespace')
    t.same(interfaces().map((i) => i.name).sort(), ['lo', 'veth0', 'veth1'], 'interfaces() lists the namespace')
    xdpAttach(ifindex, a, { mode: 'native' })
    t.equal(xdpQuery(ns.veth).progId, a.id, 'attached by ifindex')
    t.throws(() => xdpAttach(ns.veth, b, { mode: 'native' }), { name: 'BpfError', code: 'EBUSY' }, 'a plain attach does not clobber an attached program')
    t.throws(() => xdpAttach(ns.veth, b, { mode: 'native', replace: b }), { name: 'BpfError' }, 'replace with the wrong expected program fails')
    xdpAttach(ns.veth, b, { mode: 'native', replace: a })
    t.equal(xdpQuery(ns.veth).progId, b.id, 'replace with the right expected program swaps')
    const bid = b.id
    a.close(); b.close()
    t.equal(xdpQuery(ns.veth).progId, bid, 'the attachment outlives every fd of ours')
    const held = BpfProgram.fromId(bid)
    xdpDetach(ns.veth, { mode: 'native', expected: held })
    held.close()
    t.equal(xdpQuery(ns.veth).mode, 'none', 'detached')
  })
  t.equal(sh(['ip', 'netns', 'list']).includes(ns.name), true, 'namespace exists until teardown')
})

t.test('interface errors', needsRoot, async (t) => {
  const ns = tempNetns(t)
  const { a } = loadTwo()
  t.teardown(() => a.close())
  t.throws(() => ifindexOf('bad/name'), ArgumentError, "a name with '/' is refused before native code")
  t.throws(() => ifindexOf('x'.repeat(16)), ArgumentError, 'a 16-character name is refused')
  t.throws(() => ifindexOf(-1), ArgumentError, 'a negative ifindex is refused')
  t.throws(() => XdpLink.attach(a, 'nosuchif0'), { name: 'BpfError', code: 'ENODEV', hint: /interface/ }, 'a missing interface: ENODEV with a hint')
  // veth0 exists only inside the namespace: outside it the same name is unknown.
  t.throws(() => ifindexOf(ns.veth + 'x'), { name: 'BpfError', code: 'ENODEV' }, 'names resolve in the calling namespace')
  t.throws(() => withNetns('no-such-ns-xvs', () => 1), { name: 'BpfError', code: 'ENOENT' }, 'unknown namespace')
  t.throws(() => withNetns('../etc', () => 1), ArgumentError, 'bad namespace name')
})
