//! `swarmctl`: the operator's CLI over a manager's Control API. This file owns the command
//! line (clap), dispatch to the subcommands, and turning any failure into one line on stderr
//! (`Error: …`) and a non-zero exit. It talks to the cluster only through the control
//! socket: it must not link the manager's or the node's crates.

mod ago;
mod client;
mod cmd;
mod converge;
mod progress;
mod resolve;
mod table;

// The flags' value parsers live in the library (`lib.rs`), shared with the fuzz targets.
use swarmctl::{flags, ports, units};

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use cmd::secret::{Kind as ObjKind, ObjCmd};
use cmd::{
    cluster::ClusterCmd, network::NetworkCmd, node::NodeCmd, service::ServiceCmd, task::TaskCmd,
};

#[derive(Parser, Debug)]
#[command(name = "swarmctl", about = "Control a swarm cluster", version)]
struct Cli {
    /// Control socket of a manager
    #[arg(
        short = 's',
        long,
        env = "SWARM_SOCKET",
        default_value = swarm_api::defaults::CONTROL_SOCKET,
        global = true
    )]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Node management
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Service management
    Service {
        #[command(subcommand)]
        cmd: Box<ServiceCmd>,
    },
    /// Task inspection
    Task {
        #[command(subcommand)]
        cmd: TaskCmd,
    },
    /// Cluster settings and join tokens
    Cluster {
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// Secret management (data delivered only to the tasks that use it)
    Secret {
        #[command(subcommand)]
        cmd: ObjCmd,
    },
    /// Config management
    Config {
        #[command(subcommand)]
        cmd: ObjCmd,
    },
    /// Overlay networks: their subnets, and what is attached to them
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Print a shell completion script, e.g. `source <(swarmctl completion bash)`
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Writes the completion script for `shell` to stdout; needs no manager.
fn completion(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "swarmctl", &mut script);
    match cmd::out(&String::from_utf8_lossy(&script)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

/// Prints one `Error: …` line on stderr (never panics, even with stderr closed).
fn report(message: &str) {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let _ = writeln!(std::io::stderr(), "Error: {one_line}");
}

/// The text to show for a failure: a gRPC status shows its message only.
fn describe(err: &anyhow::Error) -> String {
    if let Some(status) = err.downcast_ref::<tonic::Status>() {
        if status.message().is_empty() {
            return format!("{:?}", status.code());
        }
        return status.message().to_string();
    }
    err.to_string()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
                _ => {
                    // clap's message runs up to the first blank line; usage and tips follow.
                    let rendered = e.render().to_string();
                    let message: Vec<&str> = rendered
                        .lines()
                        .take_while(|l| !l.trim().is_empty())
                        .collect();
                    let message = message.join(" ");
                    report(message.strip_prefix("error: ").unwrap_or(&message));
                    ExitCode::from(2)
                }
            };
        }
    };
    if let Command::Completion { shell } = cli.command {
        return completion(shell);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let socket = cli.socket;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Node { cmd } => cmd.run(&socket).await,
            Command::Service { cmd } => cmd.run(&socket).await,
            Command::Task { cmd } => cmd.run(&socket).await,
            Command::Cluster { cmd } => cmd.run(&socket).await,
            Command::Secret { cmd } => cmd.run(&socket, ObjKind::Secret).await,
            Command::Config { cmd } => cmd.run(&socket, ObjKind::Config).await,
            Command::Network { cmd } => cmd.run(&socket).await,
            // Answered above, without a runtime.
            Command::Completion { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&describe(&e));
            ExitCode::FAILURE
        }
    }
}
