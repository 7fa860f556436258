//! `swarmctl secret …` and `swarmctl config …`: create (from a file or stdin), ls, inspect,
//! rm. One subcommand set serves both kinds.
//!
//! A secret's data goes one way only, from the operator to the manager: this module never
//! prints it (the manager strips it from replies, and it is stripped here again in case an
//! older or rogue manager sends it). Configs are not secret; `inspect` shows their size.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use swarm_api::names::Named;
use swarm_api::{
    Annotations, Config, ConfigSpec, CreateConfigRequest, CreateSecretRequest, ListConfigsRequest,
    ListSecretsRequest, Meta, RemoveConfigRequest, RemoveSecretRequest, Secret, SecretSpec,
};

use super::{out, out_json, Format, FormatArg};
use crate::ago::ago;
use crate::client::{self, Client};
use crate::flags::parse_labels;
use crate::resolve;
use crate::table::{self, LIST, SUMMARY};

/// Which table the subcommands act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Secret,
    Config,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ObjCmd {
    /// Create one from a file or from stdin
    Create {
        /// Name (letters, digits, '-', '_', '.')
        name: String,
        /// File holding the data
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "data"
        )]
        file: Option<PathBuf>,
        /// The data itself, or "-" to read it from stdin (a secret on the command line ends up
        /// in the shell's history: prefer -f or "-")
        #[arg(long, value_name = "DATA|-", allow_hyphen_values = true)]
        data: Option<String>,
        /// Label key=value (repeatable)
        #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// List them
    #[command(visible_alias = "list")]
    Ls {
        /// Only IDs
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one (never a secret's data)
    Inspect {
        /// Name, ID or ID prefix
        name: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Remove them (refused while a service uses one)
    #[command(visible_alias = "remove")]
    Rm {
        /// Names, IDs or ID prefixes
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// The fields both kinds share, as the tables show them.
struct Row {
    id: String,
    name: String,
    created_at: i64,
    labels: Vec<(String, String)>,
    size: usize,
}

fn row(id: &str, meta: Option<&Meta>, annotations: Option<&Annotations>, size: usize) -> Row {
    let mut labels: Vec<(String, String)> = annotations
        .map(|a| a.labels.clone().into_iter().collect())
        .unwrap_or_default();
    labels.sort();
    Row {
        id: id.to_string(),
        name: annotations.map(|a| a.name.clone()).unwrap_or_default(),
        created_at: meta.map(|m| m.created_at).unwrap_or(0),
        labels,
        size,
    }
}

/// A secret as this CLI may show it: without data.
fn redact(mut s: Secret) -> Secret {
    if let Some(spec) = s.spec.as_mut() {
        spec.data.clear();
    }
    s
}

fn secret_row(s: &Secret) -> Row {
    let spec = s.spec.as_ref();
    row(
        &s.id,
        s.meta.as_ref(),
        spec.and_then(|x| x.annotations.as_ref()),
        0,
    )
}

fn config_row(c: &Config) -> Row {
    let spec = c.spec.as_ref();
    let size = spec.map(|x| x.data.len()).unwrap_or(0);
    row(
        &c.id,
        c.meta.as_ref(),
        spec.and_then(|x| x.annotations.as_ref()),
        size,
    )
}

/// The data to create from: exactly one of `-f FILE` and `--data`.
fn read_data(kind: Kind, file: Option<&Path>, data: Option<&str>) -> Result<Vec<u8>> {
    match (file, data) {
        (Some(path), None) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        }
        (None, Some("-")) => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            Ok(buf)
        }
        (None, Some(text)) => Ok(text.as_bytes().to_vec()),
        (Some(_), Some(_)) => bail!("data: give -f FILE or --data, not both"),
        (None, None) => bail!(
            "data: give -f FILE or --data - (stdin) for the {}'s content",
            kind.word()
        ),
    }
}

async fn list_secrets(c: &mut Client) -> Result<Vec<Secret>> {
    let mut v: Vec<Secret> = c
        .list_secrets(ListSecretsRequest {})
        .await?
        .into_inner()
        .secrets
        .into_iter()
        .map(redact)
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(v)
}

async fn list_configs(c: &mut Client) -> Result<Vec<Config>> {
    let mut v = c
        .list_configs(ListConfigsRequest {})
        .await?
        .into_inner()
        .configs;
    v.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(v)
}

fn name_of_secret(s: &Secret) -> Vec<&str> {
    vec![s.name()]
}

fn name_of_config(c: &Config) -> Vec<&str> {
    vec![c.name()]
}

impl ObjCmd {
    pub async fn run(self, socket: &Path, kind: Kind) -> Result<()> {
        match self {
            ObjCmd::Create {
                name,
                file,
                data,
                labels,
            } => {
                let bytes = read_data(kind, file.as_deref(), data.as_deref())?;
                let annotations = Annotations {
                    name,
                    labels: parse_labels(&labels)?,
                };
                let mut c = client::connect(socket).await?;
                let id = match kind {
                    Kind::Secret => c
                        .create_secret(CreateSecretRequest {
                            spec: Some(SecretSpec {
                                annotations: Some(annotations),
                                data: bytes,
                            }),
                        })
                        .await?
                        .into_inner()
                        .secret
                        .map(|s| s.id),
                    Kind::Config => c
                        .create_config(CreateConfigRequest {
                            spec: Some(ConfigSpec {
                                annotations: Some(annotations),
                                data: bytes,
                            }),
                        })
                        .await?
                        .into_inner()
                        .config
                        .map(|s| s.id),
                };
                out(&format!("{}\n", id.unwrap_or_default()))
            }
            ObjCmd::Ls { quiet, format } => {
                let mut c = client::connect(socket).await?;
                let rows: Vec<Row> = match kind {
                    Kind::Secret => {
                        let v = list_secrets(&mut c).await?;
                        if format.format == Format::Json {
                            return out_json(&v);
                        }
                        v.iter().map(secret_row).collect()
                    }
                    Kind::Config => {
                        let v = list_configs(&mut c).await?;
                        if format.format == Format::Json {
                            return out_json(&v);
                        }
                        v.iter().map(config_row).collect()
                    }
                };
                if quiet {
                    return out(&rows
                        .iter()
                        .map(|r| format!("{}\n", r.id))
                        .collect::<String>());
                }
                let now = swarm_api::now_ms();
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.name.clone(),
                            created_cell(now, r.created_at),
                        ]
                    })
                    .collect();
                out(&table::table(LIST, &["ID", "Name", "Created"], &cells))
            }
            ObjCmd::Inspect { name, format } => {
                let mut c = client::connect(socket).await?;
                let r = match kind {
                    Kind::Secret => {
                        let v = list_secrets(&mut c).await?;
                        let found = resolve::pick("secret", &name, &v, |s| &s.id, name_of_secret)?;
                        if format.format == Format::Json {
                            return out_json(found);
                        }
                        secret_row(found)
                    }
                    Kind::Config => {
                        let v = list_configs(&mut c).await?;
                        let found = resolve::pick("config", &name, &v, |s| &s.id, name_of_config)?;
                        if format.format == Format::Json {
                            return out_json(found);
                        }
                        config_row(found)
                    }
                };
                out(&render_inspect(kind, &r, swarm_api::now_ms()))
            }
            ObjCmd::Rm { names } => {
                let mut c = client::connect(socket).await?;
                for name in names {
                    match kind {
                        Kind::Secret => {
                            let v = list_secrets(&mut c).await?;
                            let found =
                                resolve::pick("secret", &name, &v, |s| &s.id, name_of_secret)?;
                            c.remove_secret(RemoveSecretRequest {
                                secret_id: found.id.clone(),
                            })
                            .await?;
                        }
                        Kind::Config => {
                            let v = list_configs(&mut c).await?;
                            let found =
                                resolve::pick("config", &name, &v, |s| &s.id, name_of_config)?;
                            c.remove_config(RemoveConfigRequest {
                                config_id: found.id.clone(),
                            })
                            .await?;
                        }
                    }
                    out(&format!("{name}\n"))?;
                }
                Ok(())
            }
        }
    }
}

fn created_cell(now: i64, at: i64) -> String {
    if at == 0 {
        return String::new();
    }
    ago(now, at)
}

/// `secret inspect` / `config inspect`: `key : value` lines; never a secret's data.
fn render_inspect(kind: Kind, r: &Row, now: i64) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(text, "ID\t: {}", r.id);
    let _ = writeln!(text, "Name\t: {}", r.name);
    let _ = writeln!(text, "Created\t: {}", created_cell(now, r.created_at));
    if kind == Kind::Config {
        let _ = writeln!(text, "Data size\t: {} bytes", r.size);
    }
    if !r.labels.is_empty() {
        let _ = writeln!(text, "Labels\t:");
        for (k, v) in &r.labels {
            let _ = writeln!(text, "  {k}\t: {v}");
        }
    }
    table::render(SUMMARY, &text)
}
