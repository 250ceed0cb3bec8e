// The compatibility scenario, driven by node-redis against one server.
//
// Usage: node node_redis.mjs SOCKET [--protocol default|2|3] [--skip STEP,STEP...]
// with BLOCKKV_NODE_MODULES naming the node_modules folder `make test-deps`
// installs (target/clients/node/node_modules).
//
// The same steps, in the same order and with the same keys, as redis_py.py,
// ioredis.mjs and the Rust `redis` crate's scenario (compat/tests/clients.rs).
// `--protocol` is the one the steps after the three connect steps use
// (default: the library's own default). Prints one line per step ("ok STEP",
// "skipped STEP", "FAIL STEP: why"), runs every step even after a failure,
// and exits 1 naming the failed steps.

import { createRequire } from 'node:module';
import path from 'node:path';
import { expect, expectRange, parseInfo, protoOf, runScenario, SCAN_KEYS, SCAN_MATCHES } from './scenario.mjs';

const require = createRequire(path.join(process.env.BLOCKKV_NODE_MODULES ?? 'node_modules', 'index.js'));
const { createClient, WatchError, MultiErrorReply, ErrorReply } = require('redis');
const { version } = require('redis/package.json');

async function client(sock, protocol) {
  const options = { socket: { path: sock, reconnectStrategy: false } };
  if (protocol !== 'default') options.RESP = Number(protocol);
  const c = createClient(options);
  c.on('error', () => {}); // a failed connect rejects connect(); the event only repeats it
  await c.connect();
  return c;
}

async function connectWith(sock, protocol) {
  const c = await client(sock, protocol);
  try {
    expect('ping', await c.ping(), 'PONG');
    expect('set', await c.set(`connect:${protocol}`, 'v'), 'OK');
    expect('get', await c.get(`connect:${protocol}`), 'v');
    expect('del', await c.del(`connect:${protocol}`), 1);
    // The library may fall back to RESP2 quietly: the server must say 3.
    if (protocol === '3') expect("HELLO 3's proto", Number(protoOf(await c.sendCommand(['HELLO', '3']))), 3);
  } finally {
    c.destroy();
  }
}

async function crud(r) {
  expect('set', await r.set('a', '1'), 'OK');
  expect('get', await r.get('a'), '1');
  expect('mset', await r.mSet({ b: '2', c: '3' }), 'OK');
  expect('mget', await r.mGet(['a', 'b', 'nope', 'c']), ['1', '2', null, '3']);
  expect('exists', await r.exists(['a', 'b', 'nope']), 2);
  expect('incr', await r.incr('n'), 1);
  expect('incrby', await r.incrBy('n', 5), 6);
  expect('del', await r.del(['a', 'b', 'c', 'n', 'nope']), 4);
  expect('get after del', await r.get('a'), null);
}

async function ttls(r) {
  expect('set ex', await r.set('t', 'v', { expiration: { type: 'EX', value: 100 } }), 'OK');
  expectRange('ttl', await r.ttl('t'), 99, 100);
  expect('pexpire', await r.pExpire('t', 50000), 1);
  expectRange('pttl', await r.pTTL('t'), 49000, 50000);
  expect('persist', await r.persist('t'), 1);
  expect('ttl after persist', await r.ttl('t'), -1);
  expect('ttl of a missing key', await r.ttl('nope'), -2);
  expect('del', await r.del('t'), 1);
}

async function pipeline(r) {
  const replies = await r.multi().set('p', '1').incr('p').get('p').del('p').execAsPipeline();
  expect('pipeline replies', replies, ['OK', 2, '2', 1]);
}

async function watchConflict(r, other) {
  await r.set('w', 'start');
  await r.watch('w');
  expect('watched value', await r.get('w'), 'start');
  await other.set('w', 'changed');
  let replies;
  try {
    replies = await r.multi().set('w', 'mine').set('w2', 'x').exec();
  } catch (err) {
    if (!(err instanceof WatchError)) throw err;
    replies = null;
  }
  expect('exec after a conflict', replies, null);
  expect("the other client's write stays", await r.get('w'), 'changed');
  expect('nothing of the transaction applied', await r.exists('w2'), 0);
}

async function watchSuccess(r) {
  await r.watch('w');
  expect('exec', await r.multi().set('w', 'mine').incr('wcount').exec(), ['OK', 1]);
  expect('get', await r.get('w'), 'mine');
  expect('del', await r.del(['w', 'wcount']), 2);
}

async function transactionRuntimeError(r) {
  await r.set('s', 'text');
  let replies;
  try {
    replies = await r.multi().set('r1', '1').incr('s').set('r2', '2').exec();
  } catch (err) {
    if (!(err instanceof MultiErrorReply)) throw err;
    expect('failed commands', err.errorIndexes, [1]);
    replies = err.replies;
  }
  expect('reply count', replies.length, 3);
  expect('first command', replies[0], 'OK');
  if (!(replies[1] instanceof ErrorReply) || !replies[1].message.includes('not an integer')) {
    throw new Error(`the INCR's reply: got ${JSON.stringify(replies[1])}, want a 'not an integer' error`);
  }
  expect('third command', replies[2], 'OK');
  expect('r1 applied', await r.get('r1'), '1');
  expect('r2 applied', await r.get('r2'), '2');
  expect('s unchanged', await r.get('s'), 'text');
  expect('del', await r.del(['s', 'r1', 'r2']), 3);
}

async function scanMatch(r) {
  for (const key of SCAN_KEYS) await r.set(key, 'x');
  const seen = [];
  for await (const keys of r.scanIterator({ MATCH: 'user:*:1?', COUNT: 2 })) seen.push(...keys);
  expect('scanIterator user:*:1?', seen.sort(), SCAN_MATCHES);
}

async function info(r) {
  const server = parseInfo(await r.info('server'));
  if (!server.redis_version) throw new Error(`server.redis_version missing from ${JSON.stringify(server)}`);
  const keyspace = parseInfo(await r.info('keyspace'));
  expect('keyspace db0 keys', keyspace.db0?.keys, await r.dbSize());
}

async function clientName(r) {
  expect('setname', await r.clientSetName('compat-node-redis'), 'OK');
  expect('getname', await r.clientGetName(), 'compat-node-redis');
}

async function flushdb(r) {
  expect('flushdb', await r.flushDb(), 'OK');
  expect('dbsize', await r.dbSize(), 0);
}

await runScenario('node-redis', version, {
  client,
  connectWith,
  close: (c) => c.destroy(),
  crud,
  ttls,
  pipeline,
  watchConflict,
  watchSuccess,
  transactionRuntimeError,
  scanMatch,
  info,
  clientName,
  flushdb,
});
