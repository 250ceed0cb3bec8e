"""The compatibility scenario, driven by redis-py against one server.

Usage: redis_py.py SOCKET [--protocol default|2|3] [--skip STEP,STEP...]

The same steps, in the same order and with the same keys, as node_redis.mjs,
ioredis.mjs and the Rust `redis` crate's scenario (compat/tests/clients.rs).
`--protocol` is the one the steps after the three connect steps use
(default: the library's own default). Prints one line per step ("ok STEP",
"skipped STEP", "FAIL STEP: why"), runs every step even after a failure,
and exits 1 naming the failed steps.
"""

import argparse
import sys

import redis


def client(sock, protocol):
    """A client on SOCKET: the library's defaults, or RESP `protocol`."""
    if protocol == "default":
        return redis.Redis(unix_socket_path=sock, decode_responses=True)
    return redis.Redis(unix_socket_path=sock, decode_responses=True, protocol=int(protocol))


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def connect_with(sock, protocol):
    r = client(sock, protocol)
    expect("ping", r.ping(), True)
    expect("set", r.set(f"connect:{protocol}", "v"), True)
    expect("get", r.get(f"connect:{protocol}"), "v")
    expect("del", r.delete(f"connect:{protocol}"), 1)
    if protocol == "3":
        # The library may fall back to RESP2 quietly: the server must say 3.
        hello = r.execute_command("HELLO", "3")
        expect("HELLO 3's proto", hello.get("proto") if isinstance(hello, dict) else hello, 3)
    r.close()


def crud(r):
    expect("set", r.set("a", "1"), True)
    expect("get", r.get("a"), "1")
    expect("mset", r.mset({"b": "2", "c": "3"}), True)
    expect("mget", r.mget(["a", "b", "nope", "c"]), ["1", "2", None, "3"])
    expect("exists", r.exists("a", "b", "nope"), 2)
    expect("incr", r.incr("n"), 1)
    expect("incrby", r.incrby("n", 5), 6)
    expect("del", r.delete("a", "b", "c", "n", "nope"), 4)
    expect("get after del", r.get("a"), None)


def ttls(r):
    expect("set ex", r.set("t", "v", ex=100), True)
    ttl = r.ttl("t")
    if not 99 <= ttl <= 100:
        raise AssertionError(f"ttl: got {ttl}, want 99..100")
    expect("pexpire", r.pexpire("t", 50_000), True)
    pttl = r.pttl("t")
    if not 49_000 <= pttl <= 50_000:
        raise AssertionError(f"pttl: got {pttl}, want 49000..50000")
    expect("persist", r.persist("t"), True)
    expect("ttl after persist", r.ttl("t"), -1)
    expect("ttl of a missing key", r.ttl("nope"), -2)
    expect("del", r.delete("t"), 1)


def pipeline(r):
    pipe = r.pipeline(transaction=False)
    pipe.set("p", "1").incr("p").get("p").delete("p")
    expect("pipeline replies", pipe.execute(), [True, 2, "2", 1])


def watch_conflict(r, other):
    r.set("w", "start")
    with r.pipeline() as pipe:
        pipe.watch("w")
        expect("watched value", pipe.get("w"), "start")
        other.set("w", "changed")
        pipe.multi()
        pipe.set("w", "mine")
        pipe.set("w2", "x")
        try:
            replies = pipe.execute()
        except redis.WatchError:
            replies = None
    expect("exec after a conflict", replies, None)
    expect("the other client's write stays", r.get("w"), "changed")
    expect("nothing of the transaction applied", r.exists("w2"), 0)


def watch_success(r):
    with r.pipeline() as pipe:
        pipe.watch("w")
        pipe.multi()
        pipe.set("w", "mine")
        pipe.incr("wcount")
        expect("exec", pipe.execute(), [True, 1])
    expect("get", r.get("w"), "mine")
    expect("del", r.delete("w", "wcount"), 2)


def transaction_runtime_error(r):
    r.set("s", "text")
    pipe = r.pipeline(transaction=True)
    pipe.set("r1", "1").incr("s").set("r2", "2")
    replies = pipe.execute(raise_on_error=False)
    expect("reply count", len(replies), 3)
    expect("first command", replies[0], True)
    if not isinstance(replies[1], redis.ResponseError) or "not an integer" not in str(replies[1]):
        raise AssertionError(f"the INCR's reply: got {replies[1]!r}, want a 'not an integer' error")
    expect("third command", replies[2], True)
    expect("r1 applied", r.get("r1"), "1")
    expect("r2 applied", r.get("r2"), "2")
    expect("s unchanged", r.get("s"), "text")
    expect("del", r.delete("s", "r1", "r2"), 3)


SCAN_KEYS = ["user:1:10", "user:1:11", "user:2:12", "user:5:1a", "user:3:1", "user:4:100", "member:1:10"]
SCAN_MATCHES = ["user:1:10", "user:1:11", "user:2:12", "user:5:1a"]


def scan_match(r):
    for key in SCAN_KEYS:
        r.set(key, "x")
    expect("scan_iter user:*:1?", sorted(r.scan_iter(match="user:*:1?", count=2)), SCAN_MATCHES)


def info(r):
    server = r.info("server")
    if not server.get("redis_version"):
        raise AssertionError(f"server.redis_version missing from {server!r}")
    keyspace = r.info("keyspace")
    expect("keyspace db0 keys", keyspace.get("db0", {}).get("keys"), r.dbsize())
    everything = r.info()
    expect("redis_version in INFO", everything.get("redis_version"), server["redis_version"])


def client_name(r):
    expect("setname", r.client_setname("compat-py"), True)
    expect("getname", r.client_getname(), "compat-py")


def flushdb(r):
    expect("flushdb", r.flushdb(), True)
    expect("dbsize", r.dbsize(), 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--protocol", default="default", choices=["default", "2", "3"])
    parser.add_argument("--skip", default="")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    sock = args.socket
    r = client(sock, args.protocol)
    other = client(sock, args.protocol)
    steps = [
        ("connect_default", lambda: connect_with(sock, "default")),
        ("connect_resp3", lambda: connect_with(sock, "3")),
        ("connect_resp2", lambda: connect_with(sock, "2")),
        ("crud", lambda: crud(r)),
        ("ttl", lambda: ttls(r)),
        ("pipeline", lambda: pipeline(r)),
        ("watch_conflict", lambda: watch_conflict(r, other)),
        ("watch_success", lambda: watch_success(r)),
        ("transaction_runtime_error", lambda: transaction_runtime_error(r)),
        ("scan_match", lambda: scan_match(r)),
        ("info", lambda: info(r)),
        ("client_name", lambda: client_name(r)),
        ("flushdb", lambda: flushdb(r)),
    ]
    failed = []
    print(f"redis-py {redis.__version__}, steps in protocol {args.protocol}")
    for name, step in steps:
        if name in skip:
            print(f"skipped {name}")
            continue
        try:
            step()
            print(f"ok {name}")
        except Exception as err:  # noqa: BLE001 - every failure is reported and the next step runs
            print(f"FAIL {name}: {type(err).__name__}: {err}")
            failed.append(name)
    sys.stdout.flush()
    if failed:
        print(f"failed steps: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
