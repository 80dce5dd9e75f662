//! The `llm` command, built inside this crate so the multi-replica harness
//! and its tests have the real binary at hand (`CARGO_BIN_EXE_chaos-llm`),
//! with the `redis` cache backend linked.

fn main() -> std::process::ExitCode {
    llm_cli::cli::main()
}
