//! The `ws_frames` fuzz target (see [`fahrbahn_fuzz::ws_frames`]): AFL++'s
//! persistent loop under `cargo afl build`, else a replay of the files
//! named on the command line.

fn main() {
    fahrbahn_fuzz::main(fahrbahn_fuzz::ws_frames);
}
