// What the Node.js scenarios (node_redis.mjs, ioredis.mjs) share: argument
// parsing, assertions, the INFO text parser, the scan keys, the step runner
// and the table of steps every library runs (`runScenario`).

import { isDeepStrictEqual } from 'node:util';

// Keys the scan step writes, and those `user:*:1?` matches.
export const SCAN_KEYS = ['user:1:10', 'user:1:11', 'user:2:12', 'user:5:1a', 'user:3:1', 'user:4:100', 'member:1:10'];
export const SCAN_MATCHES = ['user:1:10', 'user:1:11', 'user:2:12', 'user:5:1a'];

export function parseArgs(argv) {
  const args = { socket: undefined, protocol: 'default', skip: new Set() };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--protocol') args.protocol = argv[++i];
    else if (argv[i] === '--skip') args.skip = new Set(argv[++i].split(',').filter(Boolean));
    else args.socket = argv[i];
  }
  if (!args.socket || !['default', '2', '3'].includes(args.protocol)) {
    console.error('usage: SCRIPT SOCKET [--protocol default|2|3] [--skip STEP,STEP...]');
    process.exit(2);
  }
  return args;
}

export function expect(what, got, want) {
  if (!isDeepStrictEqual(got, want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

export function expectRange(what, got, low, high) {
  if (typeof got !== 'number' || got < low || got > high) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${low}..${high}`);
  }
}

// The `proto` field of a HELLO reply, whichever shape the library gives a
// map: a Map, a plain object, or RESP2's flat [key, value, ...] array.
export function protoOf(hello) {
  if (hello instanceof Map) return hello.get('proto');
  if (Array.isArray(hello)) {
    const at = hello.findIndex((item) => String(item) === 'proto');
    return at < 0 ? undefined : hello[at + 1];
  }
  return hello?.proto;
}

// INFO's text as Redis writes it: `field:value` lines, and keyspace lines
// (`db0:keys=3,expires=0,avg_ttl=0`) as objects of numbers.
export function parseInfo(text) {
  const fields = {};
  for (const line of String(text).split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon < 0) throw new Error(`INFO line without a colon: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1);
    if (/^db\d+$/.test(name)) {
      fields[name] = Object.fromEntries(value.split(',').map((pair) => {
        const [k, v] = pair.split('=');
        return [k, Number(v)];
      }));
    } else {
      fields[name] = value;
    }
  }
  return fields;
}

// Runs every step, even after a failure; prints one line per step; exits 1
// naming the failed steps.
export async function runSteps(skip, steps, close) {
  const failed = [];
  for (const [name, step] of steps) {
    if (skip.has(name)) {
      console.log(`skipped ${name}`);
      continue;
    }
    try {
      await step();
      console.log(`ok ${name}`);
    } catch (err) {
      console.log(`FAIL ${name}: ${err?.constructor?.name ?? 'Error'}: ${err?.message ?? err}`);
      failed.push(name);
    }
  }
  close();
  if (failed.length) {
    console.log(`failed steps: ${failed.join(', ')}`);
    process.exit(1);
  }
  process.exit(0);
}

// The scenario's steps, in order, for one library: `lib` gives `client(socket,
// protocol)`, `connectWith(socket, protocol)`, `close(client)` and one
// function per step, each taking the library's client (the WATCH conflict
// also a second one).
export async function runScenario(name, version, lib) {
  const args = parseArgs(process.argv.slice(2));
  console.log(`${name} ${version}, steps in protocol ${args.protocol}`);
  let r, other;
  const open = async () => {
    r ??= await lib.client(args.socket, args.protocol);
    other ??= await lib.client(args.socket, args.protocol);
    return r;
  };
  await runSteps(args.skip, [
    ['connect_default', () => lib.connectWith(args.socket, 'default')],
    ['connect_resp3', () => lib.connectWith(args.socket, '3')],
    ['connect_resp2', () => lib.connectWith(args.socket, '2')],
    ['crud', async () => lib.crud(await open())],
    ['ttl', async () => lib.ttls(await open())],
    ['pipeline', async () => lib.pipeline(await open())],
    ['watch_conflict', async () => lib.watchConflict(await open(), other)],
    ['watch_success', async () => lib.watchSuccess(await open())],
    ['transaction_runtime_error', async () => lib.transactionRuntimeError(await open())],
    ['scan_match', async () => lib.scanMatch(await open())],
    ['info', async () => lib.info(await open())],
    ['client_name', async () => lib.clientName(await open())],
    ['flushdb', async () => lib.flushdb(await open())],
  ], () => { if (r) lib.close(r); if (other) lib.close(other); });
}
