//! The `wamp_decode` fuzz target (see [`fahrbahn_fuzz::wamp_decode`]): AFL++'s
//! persistent loop under `cargo afl build`, else a replay of the files
//! named on the command line.

fn main() {
    fahrbahn_fuzz::main(fahrbahn_fuzz::wamp_decode);
}
