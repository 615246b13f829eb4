//! The `coffer` binary.

use std::io::IsTerminal;

use clap::Parser;
use coffer_node::config::{Cli, Command, Config, LogFormat};
use tokio_util::sync::CancellationToken;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn,openraft=warn"))
        // s3s logs whole requests (Authorization, SSE-C keys) at debug: never let that through.
        .add_directive("s3s=info".parse().expect("static directive"))
        // vaultrs/rustify trace requests (headers carry the Vault token at debug) and log every
        // failed attempt at error; Coffer reports KMS failures itself, without secrets.
        .add_directive("rustify=off".parse().expect("static directive"))
        .add_directive("vaultrs=off".parse().expect("static directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

async fn wait_for_signal(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    token.cancel();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Server(args) => args,
        Command::Certs { command } => {
            let w = command.run()?;
            println!(
                "wrote {} and {} (mode 0600)",
                w.cert.display(),
                w.key.display()
            );
            return Ok(());
        }
        Command::Admin { command } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            return Ok(rt.block_on(command.run())?);
        }
    };
    let cfg = Config::resolve(args)?;
    init_logging(cfg.log_format);
    // Shard writes to peers hold a blocking-pool thread for the whole upload (and serve peers'
    // writes from the same pool): tokio's default of 512 caps a node at ~100 concurrent
    // five-wide PUTs. Threads are cheap until used.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(4096)
        .build()?;
    rt.block_on(async move {
        let token = CancellationToken::new();
        tokio::spawn(wait_for_signal(token.clone()));
        coffer_node::server::run(cfg, token).await
    })?;
    Ok(())
}
