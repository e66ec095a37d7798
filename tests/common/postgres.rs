//! A private PostgreSQL cluster for one test: initialised in a scratch folder owned by the
//! `postgres` user (PostgreSQL refuses to run as root), listening on a free port of
//! 127.0.0.1 only, with password (SCRAM) logins over TCP, and stopped fast when dropped.
//!
//! There is no skipping: a machine without PostgreSQL's server binaries fails the test with
//! the package to install.

use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_postgres::{Client, NoTls};

/// The database the tests create their LiteLLM table in.
pub const DB: &str = "litellm";

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    superuser_password: String,
    runtime: tokio::runtime::Runtime,
    admin: Client,
}

/// The server binaries: Debian's PostgreSQL 15 where it is, else the newest installed.
fn server_bin() -> PathBuf {
    let preferred = PathBuf::from("/usr/lib/postgresql/15/bin");
    if preferred.join("initdb").exists() {
        return preferred;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb): \
             run `apt-get install -y postgresql` (.ci/run does); these tests need a real server"
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe extern "C" {
        fn geteuid() -> u32;
    }
    unsafe { geteuid() == 0 }
}

/// Runs a server binary as the `postgres` user when the tests run as root.
fn as_postgres(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().unwrap().port()
}

/// A password made for one test run.
pub fn fresh_password() -> String {
    (0..24)
        .map(|_| fastrand::alphanumeric())
        .collect::<String>()
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = server_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let superuser_password = fresh_password();
        std::fs::write(dir.path().join("pw"), &superuser_password).unwrap();
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown the scratch folder to postgres",
            )
            .unwrap();
        }
        let data = dir.path().join("data");
        let mut initdb = as_postgres(&bin, "initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", dir.path().join("pw").display()));
        run(initdb, "initdb").unwrap();

        // A port can be taken between finding it free and the server binding it: try again.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut start = as_postgres(&bin, "pg_ctl");
            start
                .arg("-D")
                .arg(&data)
                .arg("-o")
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    dir.path().display()
                ))
                .arg("-l")
                .arg(dir.path().join("log"))
                .args(["-w", "-t", "60", "start"]);
            match run(start, "pg_ctl start") {
                Ok(()) => {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let admin =
                        connect_in(&runtime, port, "postgres", &superuser_password, "postgres")
                            .expect("the superuser connects");
                    runtime
                        .block_on(admin.batch_execute(&format!("CREATE DATABASE {DB}")))
                        .unwrap();
                    let admin = connect_in(&runtime, port, "postgres", &superuser_password, DB)
                        .expect("the superuser connects to the test database");
                    return PgCluster {
                        dir,
                        bin,
                        port,
                        superuser_password,
                        runtime,
                        admin,
                    };
                }
                Err(e) => {
                    let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
                    last_error = format!("{e}\nserver log:\n{log}");
                }
            }
        }
        panic!("PostgreSQL did not start: {last_error}");
    }

    /// Runs SQL as the superuser in the test database.
    pub fn exec(&self, sql: &str) {
        self.runtime
            .block_on(self.admin.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}\n{e:?}"));
    }

    /// One number from a query run as the superuser.
    pub fn count(&self, sql: &str) -> i64 {
        let row = self
            .runtime
            .block_on(self.admin.query_one(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}\n{e:?}"));
        row.get(0)
    }

    /// Connects as `user` and runs `sql`; the error as the server words it.
    pub fn exec_as(&self, user: &str, password: &str, sql: &str) -> Result<(), String> {
        let client = connect_in(&self.runtime, self.port, user, password, DB)?;
        self.runtime
            .block_on(client.batch_execute(sql))
            .map_err(|e| format!("{e:#}: {}", db_message(&e)))
    }

    /// A login role with `password` and only SELECT on `table`.
    pub fn reader(&self, role: &str, password: &str, table: &str) {
        self.exec(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}';
             GRANT SELECT ON {table} TO {role};"
        ));
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The superuser's password (only the harness and the TLS test use it).
    pub fn superuser_password(&self) -> &str {
        &self.superuser_password
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Restarts the server (to take new settings such as `ssl`).
    pub fn restart(&mut self) {
        let mut c = as_postgres(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60", "restart"]);
        run(c, "pg_ctl restart").unwrap_or_else(|e| panic!("{e}\n{}", self.log()));
        self.admin = connect_in(
            &self.runtime,
            self.port,
            "postgres",
            &self.superuser_password,
            DB,
        )
        .expect("the superuser reconnects");
    }

    /// Writes a file into the data folder, owned by the server's user and private to it.
    pub fn write_private(&self, name: &str, contents: &[u8]) {
        let p = self.data_dir().join(name);
        std::fs::write(&p, contents).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let mut c = Command::new("chown");
            c.arg("postgres:postgres").arg(&p);
            run(c, "chown").unwrap();
        }
    }
}

/// The server's own words for a database error (the `Display` of the driver's error says only
/// "db error").
pub fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

fn connect_in(
    rt: &tokio::runtime::Runtime,
    port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> Result<Client, String> {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname(db);
    let (client, conn) = rt
        .block_on(c.connect(NoTls))
        .map_err(|e| format!("connecting as {user}: {}", db_message(&e)))?;
    rt.spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut c = as_postgres(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"]);
        if let Err(e) = run(c, "pg_ctl stop") {
            eprintln!("{e}");
        }
    }
}
