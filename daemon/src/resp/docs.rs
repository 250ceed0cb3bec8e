//! What COMMAND INFO and COMMAND DOCS say about each command kvd runs:
//! its group, the Redis version it dates from, where its keys are, its
//! synopsis and a one-line summary (redis-cli builds `help` from these).

/// (name, group, since, first key, last key, key step, synopsis, summary).
pub(super) type Doc = (&'static str, &'static str, &'static str, i8, i8, i8, &'static str, &'static str);

pub(super) static DOCS: &[Doc] = &[
    ("get", "string", "1.0.0", 1, 1, 1, "key", "Get the value of a key"),
    (
        "set",
        "string",
        "1.0.0",
        1,
        1,
        1,
        "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
        "Set the string value of a key",
    ),
    ("setex", "string", "2.0.0", 1, 1, 1, "key seconds value", "Set the value and expiration of a key"),
    (
        "psetex",
        "string",
        "2.6.0",
        1,
        1,
        1,
        "key milliseconds value",
        "Set the value and expiration in milliseconds of a key",
    ),
    ("setnx", "string", "1.0.0", 1, 1, 1, "key value", "Set the value of a key, only if the key does not exist"),
    ("mget", "string", "1.0.0", 1, -1, 1, "key [key ...]", "Get the values of all the given keys"),
    ("mset", "string", "1.0.1", 1, -1, 2, "key value [key value ...]", "Set multiple keys to multiple values"),
    ("incr", "string", "1.0.0", 1, 1, 1, "key", "Increment the integer value of a key by one"),
    ("decr", "string", "1.0.0", 1, 1, 1, "key", "Decrement the integer value of a key by one"),
    ("incrby", "string", "1.0.0", 1, 1, 1, "key increment", "Increment the integer value of a key by the given amount"),
    ("decrby", "string", "1.0.0", 1, 1, 1, "key decrement", "Decrement the integer value of a key by the given number"),
    ("del", "generic", "1.0.0", 1, -1, 1, "key [key ...]", "Delete a key"),
    ("exists", "generic", "1.0.0", 1, -1, 1, "key [key ...]", "Determine if a key exists"),
    ("expire", "generic", "1.0.0", 1, 1, 1, "key seconds [NX|XX|GT|LT]", "Set a key's time to live in seconds"),
    (
        "pexpire",
        "generic",
        "2.6.0",
        1,
        1,
        1,
        "key milliseconds [NX|XX|GT|LT]",
        "Set a key's time to live in milliseconds",
    ),
    ("ttl", "generic", "1.0.0", 1, 1, 1, "key", "Get the time to live for a key in seconds"),
    ("pttl", "generic", "2.6.0", 1, 1, 1, "key", "Get the time to live for a key in milliseconds"),
    ("persist", "generic", "2.2.0", 1, 1, 1, "key", "Remove the expiration from a key"),
    (
        "expireat",
        "generic",
        "1.2.0",
        1,
        1,
        1,
        "key unix-time-seconds [NX|XX|GT|LT]",
        "Set the expiration for a key as a UNIX timestamp",
    ),
    (
        "pexpireat",
        "generic",
        "2.6.0",
        1,
        1,
        1,
        "key unix-time-milliseconds [NX|XX|GT|LT]",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
    ),
    ("expiretime", "generic", "7.0.0", 1, 1, 1, "key", "Get the expiration Unix timestamp for a key"),
    ("pexpiretime", "generic", "7.0.0", 1, 1, 1, "key", "Get the expiration Unix timestamp for a key in milliseconds"),
    ("getset", "string", "1.0.0", 1, 1, 1, "key value", "Set the string value of a key and return its old value"),
    ("getdel", "string", "6.2.0", 1, 1, 1, "key", "Get the value of a key and delete the key"),
    (
        "getex",
        "string",
        "6.2.0",
        1,
        1,
        1,
        "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]",
        "Get the value of a key and optionally set its expiration",
    ),
    (
        "msetnx",
        "string",
        "1.0.1",
        1,
        -1,
        2,
        "key value [key value ...]",
        "Set multiple keys to multiple values, only if none of the keys exist",
    ),
    (
        "incrbyfloat",
        "string",
        "2.6.0",
        1,
        1,
        1,
        "key increment",
        "Increment the float value of a key by the given amount",
    ),
    ("append", "string", "2.0.0", 1, 1, 1, "key value", "Append a value to a key"),
    ("strlen", "string", "2.2.0", 1, 1, 1, "key", "Get the length of the value stored in a key"),
    ("getrange", "string", "2.4.0", 1, 1, 1, "key start end", "Get a substring of the string stored at a key"),
    ("substr", "string", "1.0.0", 1, 1, 1, "key start end", "Get a substring of the string stored at a key"),
    (
        "setrange",
        "string",
        "2.2.0",
        1,
        1,
        1,
        "key offset value",
        "Overwrite part of a string at key starting at the specified offset",
    ),
    (
        "setbit",
        "bitmap",
        "2.2.0",
        1,
        1,
        1,
        "key offset value",
        "Sets or clears the bit at offset in the string value stored at key",
    ),
    (
        "getbit",
        "bitmap",
        "2.2.0",
        1,
        1,
        1,
        "key offset",
        "Returns the bit value at offset in the string value stored at key",
    ),
    ("bitcount", "bitmap", "2.6.0", 1, 1, 1, "key [start end [BYTE|BIT]]", "Count set bits in a string"),
    ("unlink", "generic", "4.0.0", 1, -1, 1, "key [key ...]", "Delete a key (kvd: the same as DEL)"),
    ("touch", "generic", "3.2.1", 1, -1, 1, "key [key ...]", "Count the keys given that exist"),
    ("type", "generic", "1.0.0", 1, 1, 1, "key", "Determine the type stored at key"),
    ("rename", "generic", "1.0.0", 1, 2, 1, "key newkey", "Rename a key"),
    ("renamenx", "generic", "1.0.0", 1, 2, 1, "key newkey", "Rename a key, only if the new key does not exist"),
    ("copy", "generic", "6.2.0", 1, 2, 1, "source destination [DB destination-db] [REPLACE]", "Copy a key"),
    (
        "scan",
        "generic",
        "2.8.0",
        0,
        0,
        0,
        "cursor [MATCH pattern] [COUNT count] [TYPE type]",
        "Incrementally iterate the keys space",
    ),
    ("keys", "generic", "1.0.0", 0, 0, 0, "pattern", "Find all keys matching the given pattern"),
    ("randomkey", "generic", "1.0.0", 0, 0, 0, "", "Return a random key from the keyspace"),
    ("flushdb", "server", "1.0.0", 0, 0, 0, "[ASYNC|SYNC]", "Remove all keys from the current database"),
    ("flushall", "server", "1.0.0", 0, 0, 0, "[ASYNC|SYNC]", "Remove all keys from all databases"),
    ("dbsize", "server", "1.0.0", 0, 0, 0, "", "Return the number of keys in the selected database"),
    ("ping", "connection", "1.0.0", 0, 0, 0, "[message]", "Ping the server"),
    ("echo", "connection", "1.0.0", 0, 0, 0, "message", "Echo the given string"),
    ("info", "server", "1.0.0", 0, 0, 0, "[section [section ...]]", "Get information and statistics about the server"),
    (
        "command",
        "server",
        "2.8.13",
        0,
        0,
        0,
        "[COUNT|LIST|INFO command-name ...|DOCS command-name ...]",
        "Get details about the commands kvd runs",
    ),
    (
        "config",
        "server",
        "2.0.0",
        0,
        0,
        0,
        "GET parameter [parameter ...]|SET parameter value [parameter value ...]|RESETSTAT|REWRITE",
        "Get or set kvd's settings",
    ),
    (
        "client",
        "connection",
        "2.4.0",
        0,
        0,
        0,
        "ID|GETNAME|SETNAME connection-name|SETINFO LIB-NAME|LIB-VER value|INFO|LIST [TYPE type] [ID client-id ...]|KILL ID client-id [SKIPME yes|no]|NO-EVICT ON|OFF|REPLY ON|OFF|SKIP",
        "A container for client connection commands",
    ),
    (
        "hello",
        "connection",
        "6.0.0",
        0,
        0,
        0,
        "[protover [AUTH username password] [SETNAME clientname]]",
        "Handshake with the server",
    ),
    ("select", "connection", "1.0.0", 0, 0, 0, "index", "Change the selected database (kvd has database 0 only)"),
    ("auth", "connection", "1.0.0", 0, 0, 0, "[username] password", "Authenticate to the server"),
    ("time", "server", "2.6.0", 0, 0, 0, "", "Return the current server time"),
    ("multi", "transactions", "1.2.0", 0, 0, 0, "", "Mark the start of a transaction block"),
    ("exec", "transactions", "1.2.0", 0, 0, 0, "", "Execute all commands issued after MULTI"),
    ("discard", "transactions", "2.0.0", 0, 0, 0, "", "Discard all commands issued after MULTI"),
    (
        "watch",
        "transactions",
        "2.2.0",
        1,
        -1,
        1,
        "key [key ...]",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
    ),
    ("unwatch", "transactions", "2.2.0", 0, 0, 0, "", "Forget about all watched keys"),
    ("reset", "connection", "6.2.0", 0, 0, 0, "", "Reset the connection"),
    ("quit", "connection", "1.0.0", 0, 0, 0, "", "Close the connection"),
    ("monitor", "server", "1.0.0", 0, 0, 0, "", "Listen for all requests received by the server in real time"),
    ("slowlog", "server", "2.2.12", 0, 0, 0, "GET [count]|LEN|RESET", "Manage the slow log"),
    ("object", "generic", "2.2.3", 2, 2, 1, "ENCODING|REFCOUNT|IDLETIME|FREQ key", "Inspect the internals of a key"),
    ("memory", "server", "4.0.0", 0, 0, 0, "USAGE key [SAMPLES count]", "Estimate the memory a key takes"),
    (
        "latency",
        "server",
        "2.8.13",
        0,
        0,
        0,
        "LATEST|HISTOGRAM [command ...]|RESET [event ...]|HISTORY event|DOCTOR",
        "Latency figures kvd keeps",
    ),
];

/// The doc of command `name`.
pub(super) fn doc(name: &str) -> Option<&'static Doc> {
    DOCS.iter().find(|doc| doc.0 == name)
}

/// The synopsis's top-level parts: words, and [bracketed] groups whole.
pub(super) fn synopsis_parts(synopsis: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, c) in synopsis.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ' ' if depth == 0 => {
                if at > start {
                    parts.push(&synopsis[start..at]);
                }
                start = at + 1;
            }
            _ => {}
        }
    }
    if synopsis.len() > start {
        parts.push(&synopsis[start..]);
    }
    parts
}
