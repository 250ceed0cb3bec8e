//! Property tests of the RESP decoder: commands encoded as arrays of bulk
//! strings come back whole, however the bytes are cut into reads; arbitrary
//! bytes (pure soup, or valid commands with bytes flipped) never make it
//! panic, and it never holds more than what it was fed.
//!
//! PROPTEST_CASES is the long-run knob, e.g.
//! `PROPTEST_CASES=100000 cargo test --release -p blockkv-protocol --test resp_random`.

use blockkv_protocol::resp::{Command, RespDecoder};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|text| text.parse().ok()).unwrap_or(default_cases);
    Config { cases, failure_persistence: None, ..Config::default() }
}

fn command() -> impl Strategy<Value = Command> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
        .prop_map(|args| Command::from_args(args.iter().map(Vec::as_slice)))
}

fn encode(command: &Command) -> Vec<u8> {
    let mut out = format!("*{}\r\n", command.len()).into_bytes();
    for arg in command.iter() {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Feeds `input` in pieces of the given sizes; every command decoded, or
/// the error that stopped the decoder.
fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> Result<Vec<Command>, String> {
    let mut decoder = RespDecoder::new();
    let mut commands = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let end = (at + cut).min(input.len());
        decoder.feed(&input[at..end]);
        at = end;
        loop {
            match decoder.next_command() {
                Ok(Some(command)) => commands.push(command),
                Ok(None) => break,
                Err(err) => return Err(err.to_string()),
            }
        }
        assert!(decoder.buffered_bytes() <= input.len(), "holds no more than it was fed");
    }
    Ok(commands)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn pipelined_commands_come_back_whole_however_cut(
        commands in prop::collection::vec(command(), 1..8),
        cuts in prop::collection::vec(1usize..64, 0..40),
    ) {
        // Arrays of bulk strings, pipelined and read in arbitrary pieces.
        let input: Vec<u8> = commands.iter().flat_map(encode).collect();
        prop_assert_eq!(decode_in_pieces(&input, &cuts), Ok(commands));
    }

    #[test]
    fn byte_soup_never_panics(input in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(1usize..64, 0..20)) {
        // Any bytes: commands, an error, or a wait for more — never a panic.
        let _ = decode_in_pieces(&input, &cuts);
    }

    #[test]
    fn flipped_commands_never_panic(command in command(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        // A valid command with bytes overwritten: decodes to something, fails, or waits.
        let mut input = encode(&command);
        for (at, byte) in flips {
            let at = at.index(input.len());
            input[at] = byte;
        }
        let _ = decode_in_pieces(&input, &[]);
    }
}
