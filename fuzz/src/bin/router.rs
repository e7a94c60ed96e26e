//! The `router` fuzz target (see [`fahrbahn_fuzz::router`]): AFL++'s
//! persistent loop under `cargo afl build`, else a replay of the files
//! named on the command line.

fn main() {
    fahrbahn_fuzz::main(fahrbahn_fuzz::router);
}
