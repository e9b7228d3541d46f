//! Kubelet plugin registration (src/registration.rs), with the test in the kubelet's part: it
//! calls `GetInfo` and `NotifyRegistrationStatus` on `<dir>/<driver>-reg.sock` with a client
//! generated from the same proto, and checks what the driver answers, records, logs and
//! counts, that the socket goes away at shutdown, that a stale one is replaced, and that bad
//! flags are refused by name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_core::Engine;
use tether_driver::metrics::Metrics;
use tether_driver::registration::api::registration_client::RegistrationClient;
use tether_driver::registration::api::{InfoRequest, RegistrationStatus};
use tether_driver::registration::{self, Config, FlagError, Flags, KubeletStatus, Registrar};
use tether_driver::server::{connect_unix, Endpoint};
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

const DRIVER: &str = "tether.csi.dev";
const KUBELET_PATH: &str = "/var/lib/kubelet/plugins/tether.csi.dev/csi.sock";

/// A registrar on a temporary plugin registry, with its own CSI socket listening (the
/// registrar waits for it) and its metrics.
struct Kubelet {
    dir: tempfile::TempDir,
    config: Config,
    metrics: Metrics,
    registrar: Registrar,
    _csi: UnixListener,
}

impl Kubelet {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let csi = dir.path().join("csi.sock");
        let listener = UnixListener::bind(&csi).unwrap();
        let config = config(&dir.path().join("plugins_registry"), &csi);
        let metrics = Metrics::new("rds_csi", Arc::new(Engine::new())).unwrap();
        let registrar = Registrar::new(&config, "rds_csi", &metrics).unwrap();
        Self { dir, config, metrics, registrar, _csi: listener }
    }

    /// Starts serving; the returned sender stops it.
    fn start(&self) -> (oneshot::Sender<()>, JoinHandle<Result<(), tonic::transport::Error>>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = registration::start(&self.config, self.registrar.clone(), stopped).unwrap();
        (stop, task)
    }

    async fn client(&self) -> RegistrationClient<Channel> {
        RegistrationClient::new(connect_unix(&self.config.socket()).await.unwrap())
    }
}

fn config(registry: &Path, csi: &Path) -> Config {
    let endpoint = Endpoint::Unix(csi.to_path_buf());
    let kubelet_path = PathBuf::from(KUBELET_PATH);
    let flags = Flags {
        dir: Some(registry),
        path: Some(&kubelet_path),
        node_plugin: true,
        endpoint: &endpoint,
        driver_name: DRIVER,
    };
    Config::from_flags(&flags).unwrap().expect("both flags given: registration is on")
}

/// Every log line written while it is the thread's subscriber (the tests run on one thread,
/// so the server's tasks log here too).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let log = self.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || log.clone()).finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The line of the exposition that starts with `name` followed by a space.
fn sample(metrics: &Metrics, name: &str) -> String {
    let text = metrics.render();
    let prefix = format!("{name} ");
    text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name} in\n{text}")).to_owned()
}

#[tokio::test]
async fn get_info_answers_the_driver_name_csi_plugin_type_kubelet_endpoint_and_version_1_0_0() {
    let k = Kubelet::new();
    let (_stop, _task) = k.start();
    assert_eq!(k.config.socket(), k.dir.path().join("plugins_registry/tether.csi.dev-reg.sock"));
    let info = k.client().await.get_info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.r#type, "CSIPlugin");
    assert_eq!(info.name, DRIVER);
    assert_eq!(info.endpoint, KUBELET_PATH);
    assert_eq!(info.supported_versions, ["1.0.0"]);
    assert_eq!(k.registrar.status(), KubeletStatus::Waiting);
    assert_eq!(sample(&k.metrics, "rds_csi_kubelet_registered"), "rds_csi_kubelet_registered 0");
}

#[tokio::test]
async fn a_refusal_is_recorded_logged_at_error_and_counted_and_a_later_registration_clears_it() {
    let log = Log::default();
    let _guard = log.capture();
    let k = Kubelet::new();
    let (_stop, _task) = k.start();
    let mut client = k.client().await;
    let refused = RegistrationStatus { plugin_registered: false, error: "no CSI driver on that endpoint".into() };
    client.notify_registration_status(refused).await.unwrap();
    assert_eq!(k.registrar.status(), KubeletStatus::Refused("no CSI driver on that endpoint".into()));
    assert_eq!(
        sample(&k.metrics, "rds_csi_kubelet_registration_refusals_total"),
        "rds_csi_kubelet_registration_refusals_total 1"
    );
    assert_eq!(sample(&k.metrics, "rds_csi_kubelet_registered"), "rds_csi_kubelet_registered 0");
    let text = log.text();
    let line =
        text.lines().find(|l| l.contains("refused to register")).unwrap_or_else(|| panic!("not logged:\n{text}"));
    assert!(line.contains("ERROR") && line.contains("no CSI driver on that endpoint"), "{line}");

    client
        .notify_registration_status(RegistrationStatus { plugin_registered: true, error: String::new() })
        .await
        .unwrap();
    assert_eq!(k.registrar.status(), KubeletStatus::Registered);
    assert_eq!(sample(&k.metrics, "rds_csi_kubelet_registered"), "rds_csi_kubelet_registered 1");
    assert_eq!(
        sample(&k.metrics, "rds_csi_kubelet_registration_refusals_total"),
        "rds_csi_kubelet_registration_refusals_total 1"
    );
    let text = log.text();
    let line =
        text.lines().find(|l| l.contains("registered the plugin")).unwrap_or_else(|| panic!("not logged:\n{text}"));
    assert!(line.contains("INFO"), "{line}");
}

#[tokio::test]
async fn the_socket_is_removed_on_shutdown() {
    let k = Kubelet::new();
    let (stop, task) = k.start();
    k.client().await.get_info(InfoRequest {}).await.unwrap();
    assert!(k.config.socket().exists());
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!k.config.socket().exists(), "the kubelet would keep a plugin whose socket is left behind");
}

#[tokio::test]
async fn a_stale_socket_from_a_crashed_run_is_replaced() {
    let k = Kubelet::new();
    std::fs::create_dir_all(&k.config.dir).unwrap();
    // A socket nobody listens on any more: what a killed process leaves.
    drop(std::os::unix::net::UnixListener::bind(k.config.socket()).unwrap());
    assert!(std::os::unix::net::UnixStream::connect(k.config.socket()).is_err());
    let (_stop, _task) = k.start();
    let info = k.client().await.get_info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.name, DRIVER);
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_refused_naming_it_and_left_alone() {
    let k = Kubelet::new();
    std::fs::create_dir_all(&k.config.dir).unwrap();
    std::fs::write(k.config.socket(), "not a socket").unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    let err = registration::start(&k.config, k.registrar.clone(), stopped).unwrap_err();
    assert!(err.to_string().contains(&k.config.socket().display().to_string()), "{err}");
    assert_eq!(std::fs::read_to_string(k.config.socket()).unwrap(), "not a socket");
}

/// A registrar whose CSI socket does not exist yet.
fn without_csi(dir: &Path) -> (Config, Registrar) {
    let config = config(&dir.join("registry"), &dir.join("csi.sock"));
    let metrics = Metrics::new("rds_csi", Arc::new(Engine::new())).unwrap();
    let registrar = Registrar::new(&config, "rds_csi", &metrics).unwrap();
    (config, registrar)
}

#[tokio::test]
async fn the_registrar_tries_the_csi_socket_until_it_exists_then_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (config, registrar) = without_csi(dir.path());
    let csi = config.csi_socket.clone();
    let (_stop, stopped) = oneshot::channel::<()>();
    let _task = registration::start(&config, registrar, stopped).unwrap();
    // The registrar tries the CSI socket until it answers; its try reaches this listener.
    let listener = UnixListener::bind(&csi).unwrap();
    listener.accept().await.unwrap();
    let mut client = RegistrationClient::new(connect_unix(&config.socket()).await.unwrap());
    assert_eq!(client.get_info(InfoRequest {}).await.unwrap().into_inner().name, DRIVER);
}

#[tokio::test]
async fn a_shutdown_while_waiting_for_the_csi_socket_removes_the_registration_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (config, registrar) = without_csi(dir.path());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = registration::start(&config, registrar, stopped).unwrap();
    assert!(config.socket().exists(), "bound at start, so that a bad directory fails start-up");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!config.socket().exists());
}

#[tokio::test]
async fn shutdown_leaves_alone_a_socket_that_a_newer_process_bound_at_the_same_path() {
    let k = Kubelet::new();
    let (stop, task) = k.start();
    k.client().await.get_info(InfoRequest {}).await.unwrap();
    // The next instance starts before this one stops: it replaces the socket file with its own.
    std::fs::remove_file(k.config.socket()).unwrap();
    let _newer = UnixListener::bind(k.config.socket()).unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(k.config.socket().exists(), "the old instance removed the new one's socket");
}

#[test]
fn bad_flags_are_refused_naming_the_flag() {
    let unix = Endpoint::Unix(PathBuf::from("/csi/csi.sock"));
    let tcp = Endpoint::Tcp("127.0.0.1:10000".parse().unwrap());
    let (dir, path) = (Path::new("/var/lib/kubelet/plugins_registry"), Path::new(KUBELET_PATH));
    let ok = Flags { dir: Some(dir), path: Some(path), node_plugin: true, endpoint: &unix, driver_name: DRIVER };
    assert!(Config::from_flags(&ok).unwrap().is_some());
    assert_eq!(Config::from_flags(&Flags { dir: None, path: None, ..ok }), Ok(None));
    let refused = [
        (Flags { dir: None, ..ok }, "--kubelet-registration-path needs --kubelet-registration-dir"),
        (Flags { path: None, ..ok }, "--kubelet-registration-dir needs --kubelet-registration-path"),
        (Flags { node_plugin: false, ..ok }, "--kubelet-registration-dir needs --node-plugin"),
        (Flags { dir: Some(Path::new("plugins_registry")), ..ok }, "--kubelet-registration-dir \"plugins_registry\""),
        (Flags { path: Some(Path::new("csi.sock")), ..ok }, "--kubelet-registration-path \"csi.sock\""),
        (Flags { endpoint: &tcp, ..ok }, "needs a unix:// --endpoint"),
        (Flags { driver_name: "a/b", ..ok }, "--driver-name \"a/b\""),
        (Flags { driver_name: "", ..ok }, "--driver-name \"\""),
        (Flags { driver_name: ".hidden", ..ok }, "--driver-name \".hidden\""),
    ];
    for (flags, named) in refused {
        let err = Config::from_flags(&flags).unwrap_err();
        assert!(err.to_string().contains(named), "{flags:?}: {err} does not name {named}");
    }
    assert!(matches!(Config::from_flags(&Flags { node_plugin: false, ..ok }), Err(FlagError::NotNodePlugin)));
}

/// How long a refused start may take on a loaded machine before the test calls it a hang
/// (a start that was not refused would serve until killed).
const REFUSAL_DEADLINE: Duration = Duration::from_secs(90);

/// Waits for `child` to exit, killing it (and failing) once [`REFUSAL_DEADLINE`] has passed.
fn exited(child: Child) -> (ExitStatus, String) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    let Ok(out) = rx.recv_timeout(REFUSAL_DEADLINE) else {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!("tether-csi was not refused: still running after {REFUSAL_DEADLINE:?}");
    };
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn tether_csi_refuses_registration_without_node_plugin_before_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("plugins_registry");
    let child = Command::new(env!("CARGO_BIN_EXE_tether-csi"))
        .args(["--endpoint", &format!("unix://{}", dir.path().join("csi.sock").display())])
        .args(["--node-id", "node-a", "--metrics-address", ""])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--kubelet-registration-dir")
        .arg(&registry)
        .args(["--kubelet-registration-path", KUBELET_PATH])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stderr) = exited(child);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("--kubelet-registration-dir needs --node-plugin"), "{stderr}");
    assert!(!registry.exists() && !dir.path().join("csi.sock").exists(), "a refused start left a trace");
}
