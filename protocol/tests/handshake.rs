//! The handshake over real Unix socket pairs: agreement, a version mismatch
//! seen from both sides, a busy server, and a peer that is not blockkv.

use blockkv_protocol::handshake::{HELLO_BYTES, REPLY_BYTES};
use blockkv_protocol::{
    HandshakeReply, Hello, PROTOCOL_VERSION, ProtocolError, Request, Response, client_handshake, read_message,
    server_handshake, write_message,
};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;

#[test]
fn same_version_agrees_and_requests_flow() {
    // Client and server agree on PROTOCOL_VERSION, then a Ping gets a Pong.
    let (mut client, mut server) = UnixStream::pair().expect("socket pair");
    let serving = thread::spawn(move || {
        let version = server_handshake(&mut server).expect("server side");
        let request: Request = read_message(&mut server).expect("reads").expect("a request");
        assert_eq!(request, Request::Ping);
        write_message(&mut server, &Response::Pong).expect("answers");
        version
    });
    assert_eq!(client_handshake(&mut client).expect("client side"), PROTOCOL_VERSION);
    write_message(&mut client, &Request::Ping).expect("asks");
    assert_eq!(read_message::<_, Response>(&mut client).expect("reads"), Some(Response::Pong));
    assert_eq!(serving.join().expect("server thread"), PROTOCOL_VERSION);
}

#[test]
fn client_of_another_version_is_refused_with_both_versions_named() {
    // A future client (version + 1) gets a refusal naming the server's version,
    // and the server reports the mismatch and closes.
    let (mut client, mut server) = UnixStream::pair().expect("socket pair");
    let serving = thread::spawn(move || server_handshake(&mut server));
    let future = PROTOCOL_VERSION + 1;
    client.write_all(&Hello { version: future }.encode()).expect("hello");
    let mut reply = [0u8; REPLY_BYTES];
    client.read_exact(&mut reply).expect("reply");
    let reply = HandshakeReply::decode(&reply).expect("decodes");
    assert_eq!(reply, HandshakeReply::VersionRefused { server_version: PROTOCOL_VERSION });
    let server_err = serving.join().expect("server thread").expect_err("mismatch");
    assert!(matches!(server_err, ProtocolError::VersionMismatch { ours, theirs }
        if ours == PROTOCOL_VERSION && theirs == future));
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("closed");
    assert!(rest.is_empty());
}

#[test]
fn server_of_another_version_gives_the_client_a_printable_error() {
    // An older server refuses our version; the client's error names both.
    let (mut client, mut server) = UnixStream::pair().expect("socket pair");
    let serving = thread::spawn(move || {
        let mut hello = [0u8; HELLO_BYTES];
        server.read_exact(&mut hello).expect("hello");
        server.write_all(&HandshakeReply::VersionRefused { server_version: 0 }.encode()).expect("reply");
    });
    let err = client_handshake(&mut client).expect_err("mismatch");
    serving.join().expect("server thread");
    assert!(matches!(err, ProtocolError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: 0 }));
    let text = err.to_string();
    assert!(text.contains(&format!("version {PROTOCOL_VERSION}")) && text.contains("version 0"), "{text}");
}

#[test]
fn busy_server_is_a_clear_error() {
    // A server at CONNECTIONS_MAX answers Busy; the client says so.
    let (mut client, mut server) = UnixStream::pair().expect("socket pair");
    let serving = thread::spawn(move || {
        let mut hello = [0u8; HELLO_BYTES];
        server.read_exact(&mut hello).expect("hello");
        server.write_all(&HandshakeReply::Busy { server_version: PROTOCOL_VERSION }.encode()).expect("reply");
    });
    let err = client_handshake(&mut client).expect_err("busy");
    serving.join().expect("server thread");
    assert!(matches!(err, ProtocolError::ServerBusy));
}

#[test]
fn peer_that_is_not_blockkv_is_bad_magic() {
    // A server that answers with something else (here RESP) is refused.
    let (mut client, mut server) = UnixStream::pair().expect("socket pair");
    let serving = thread::spawn(move || {
        let mut hello = [0u8; HELLO_BYTES];
        server.read_exact(&mut hello).expect("hello");
        server.write_all(b"-ERR un").expect("reply");
    });
    let err = client_handshake(&mut client).expect_err("bad magic");
    serving.join().expect("server thread");
    assert!(matches!(err, ProtocolError::BadMagic { .. }));
}

#[test]
fn server_that_hangs_up_is_an_io_error() {
    // No reply at all: the client reports an unexpected end, not a hang or panic.
    let (mut client, server) = UnixStream::pair().expect("socket pair");
    drop(server);
    let err = client_handshake(&mut client).expect_err("closed");
    assert!(matches!(err, ProtocolError::Io(_)));
}
