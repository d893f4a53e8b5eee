//! The multi-call binary: all logic lives in the library.

fn main() {
    std::process::exit(mailtool::cli::main());
}
