use clap::Parser;

fn main() {
    let cli = harmony_agent::cli::Cli::parse();
    match harmony_agent::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("harmony-agent: {e:#}");
            std::process::exit(1);
        }
    }
}
