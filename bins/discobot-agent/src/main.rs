//! The `discobot-agent` binary that runs inside each sandbox; not yet implemented.

fn main() {
    eprintln!("discobot-agent: not yet implemented");
    std::process::exit(2);
}
