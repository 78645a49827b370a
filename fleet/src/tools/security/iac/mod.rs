//! `scan_iac`: lints a Dockerfile or Kubernetes manifests for risky settings.
//!
//! Dockerfile rules (findings carry the instruction's 1-based `line`):
//!
//! | rule | finding | severity |
//! | --- | --- | --- |
//! | `docker-image-latest` | `FROM` an image tagged `latest` or not tagged at all (no digest) | medium |
//! | `docker-root-user` | the final stage has no `USER`, or its last `USER` is `root`/`0` | medium |
//! | `docker-add-remote-url` | `ADD` of an `http(s)://` URL (low when `--checksum` pins it) | medium |
//! | `docker-curl-pipe-shell` | `RUN` piping `curl`/`wget` output into a shell | high |
//! | `docker-secret-in-env` | `ENV` (high) or `ARG` (medium) named like a secret: `PASSWORD`, `SECRET`, `TOKEN`, `KEY`, … (names ending `_FILE`/`_PATH`/`_URL`, or mentioning `PUBLIC`/`GPG`, are pointers, not secrets) | high/medium |
//! | `docker-apt-install-recommends` | `apt-get install` without `--no-install-recommends` | low |
//! | `docker-expose-ssh` | `EXPOSE 22` | medium |
//!
//! `FROM scratch`, `FROM <earlier stage>` and `FROM $VARIABLE` are not judged by tag.
//!
//! Kubernetes rules (findings carry the 0-based `document` index, the `resource` as
//! `Kind/name` and the `path` of the offending field). Pods, Deployments, StatefulSets,
//! DaemonSets, ReplicaSets, ReplicationControllers, Jobs (`spec.template.spec`), CronJobs
//! (`spec.jobTemplate.spec.template.spec`) and `List` items are checked; containers,
//! init containers and ephemeral containers alike:
//!
//! | rule | finding | severity |
//! | --- | --- | --- |
//! | `k8s-privileged` | `securityContext.privileged: true` | critical |
//! | `k8s-privilege-escalation` | `allowPrivilegeEscalation` true (high) or unset (medium) | high/medium |
//! | `k8s-run-as-root` | effective `runAsUser: 0` | high |
//! | `k8s-run-as-non-root` | effective `runAsNonRoot` unset or false (low when a non-zero `runAsUser` is set) | medium/low |
//! | `k8s-host-network` / `k8s-host-pid` / `k8s-host-ipc` | host namespaces shared | high |
//! | `k8s-host-path` | a `hostPath` volume | high |
//! | `k8s-dangerous-capabilities` | `capabilities.add` of `SYS_ADMIN`, `NET_ADMIN` or `ALL` | high |
//! | `k8s-missing-limits` | no `resources.limits` | medium |
//! | `k8s-image-latest` | image tagged `latest` or untagged (no digest) | medium |
//! | `k8s-writable-root-fs` | `readOnlyRootFilesystem` not true | low |
//!
//! Booleans written YAML 1.1 style (`yes`, `on`, `"true"`) count as true, as the Kubernetes
//! YAML parser reads them.
//!
//! YAML nested deeper than [`MAX_FLOW_DEPTH`] flow collections is refused before it is parsed
//! (the parser's time grows with the square of that depth), and at most
//! [`MAX_FINDINGS`](crate::tools::security::MAX_FINDINGS) findings are listed, in file order,
//! with `truncated: true` when there were more.
//!
//! Its parts: `schema` holds the tool's arguments and output, `scan` tells the two kinds
//! apart and dispatches, `dockerfile` and `kubernetes` hold each kind's rules, `image`
//! the image-tag judgement both share, `depth` the nesting check before parsing.

#[cfg(test)]
mod bounds_tests;
mod depth;
mod dockerfile;
mod image;
mod kubernetes;
mod scan;
mod schema;
#[cfg(test)]
mod tests;

pub use depth::MAX_FLOW_DEPTH;
pub use scan::scan_iac;
pub use schema::{IacFinding, SUPPORTED_KINDS, ScanIacArgs, ScanIacOutput};
