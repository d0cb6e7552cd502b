//! Following a git repository with libgit2: a bare cache clone, fetches with forced refspecs
//! (so force-pushes are followed), and reading one commit's tree into manifests through the
//! parse cache, so unchanged blobs are never parsed again.
//!
//! [`transport`] answers the network's questions (credentials, SSH host keys) and names its
//! failures; [`tree`] reads one commit (its tree through the walk's rules, its metadata, the
//! files that changed); [`memo`] walks a commit's tree reusing what the last load found in
//! the directories that did not change.

mod memo;
mod transport;
mod tree;

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use git2::{
    AutotagOption, ErrorCode, FetchOptions, FetchPrune, Oid, PushOptions, RemoteCallbacks,
    Repository,
};

use super::spec::{Auth, GitRef, SourceSpec, UrlKind};
use super::walk::{Kind, TreeView};
use super::{CommitId, FetchOutcome, LoadedRevision, SourceError};
use crate::manifest::{ContentId, ManifestSet, ParseCache, ReadOptions};
use memo::WalkMemo;
use transport::{Transfer, check_host_key, credentials, ssh_host_port};
use tree::{GitView, changed, revision_of};

/// Namespace of our own refs in the cache repository, apart from anything a user might push.
const REF_PREFIX: &str = "refs/veer";

/// How `git receive-pack` reports a push to the branch a non-bare repository has checked out
/// (`receive.denyCurrentBranch`, on by default).
const CHECKED_OUT_REFUSAL: &str = "branch is currently checked out";

/// How a push ended, short of an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PushOutcome {
    /// The remote branch now points at the pushed commit.
    Pushed,
    /// The remote refused the update (e.g. someone pushed meanwhile, or a hook said no): a try
    /// on the new tip may succeed. The reason as the remote (or libgit2) gave it.
    Rejected(String),
    /// The remote is a non-bare repository that takes no push to the branch: it has it
    /// checked out, or it is a local path (libgit2 pushes locally only into bare
    /// repositories). No retry can help. The reason as given.
    NonBare(String),
}

/// libgit2's socket timeouts (it has none by default, so a silent server would hold a fetch
/// thread forever): connecting, and each read or write.
const CONNECT_TIMEOUT_MS: i32 = 15_000;
const IO_TIMEOUT_MS: i32 = 60_000;

/// How libgit2 maps pack files: in windows of this size, and no more than this in all before it
/// unmaps the least recently used window. Its defaults (1 GiB windows, 8 GiB in all on 64-bit)
/// keep every page of a pack that was read mapped: fetching and loading 200 incompressible
/// 1 MB files (a 191 MiB pack) peaked at 221 MiB RSS, 63 MiB with these. They do not bound the
/// indexer of a fetch, which takes its pack out of libgit2's window list: while it checksums an
/// object, the object's packed bytes are mapped whole (file-backed pages, not heap).
const MWINDOW_SIZE: usize = 8 * 1024 * 1024;
const MWINDOW_MAPPED_LIMIT: usize = 32 * 1024 * 1024;

static LIBGIT2_OPTIONS: std::sync::Once = std::sync::Once::new();

/// libgit2's global settings, set once before the first repository is opened: socket timeouts
/// and bounded pack mappings. (Its object cache keeps no blobs by default, and only objects of
/// 4 KiB at most of other types: left as it is.)
fn set_libgit2_options() {
    LIBGIT2_OPTIONS.call_once(|| {
        // SAFETY: these write libgit2 globals without locking. They run once, inside
        // `call_once` (other threads wait for it), from `GitSource::open`, before the first
        // repository of a `GitSource` exists. Every network operation and every pack read of
        // the binary goes through a `GitSource`, except `veer demo`'s own repository
        // (`demo::repo`), which lives in the `veer demo` process; that process opens no
        // `GitSource` (the veer it shows runs as a child process), so no libgit2 call can be
        // reading the globals while they are written.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(CONNECT_TIMEOUT_MS);
            let _ = git2::opts::set_server_timeout_in_milliseconds(IO_TIMEOUT_MS);
            let _ = git2::opts::set_mwindow_size(MWINDOW_SIZE);
            let _ = git2::opts::set_mwindow_mapped_limit(MWINDOW_MAPPED_LIMIT);
        }
    });
}

/// A load's manifest files, (path, content id) in path order. The paths are the walk's (see
/// [`memo`]): an entry holds a pointer and 20 bytes.
type FileIds = Vec<(Arc<str>, ContentId)>;

/// A followed repository and its bare cache clone.
pub struct GitSource {
    spec: SourceSpec,
    repo: Repository,
    fetched: Option<CommitId>,
    /// The last loaded commit and its manifest files, for change lists.
    loaded: Option<(CommitId, FileIds)>,
    /// The last load's walk, reused by the next load for the directories that did not change.
    walked: Option<WalkMemo>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.spec.url.text)
            .field("reference", &self.spec.reference)
            .field("fetched", &self.fetched)
            .finish_non_exhaustive()
    }
}

impl GitSource {
    /// Open (or create) the bare cache repository in `cache_dir`. Nothing is fetched yet.
    pub fn open(spec: SourceSpec, cache_dir: &Path) -> Result<Self, SourceError> {
        set_libgit2_options();
        let sends_secret = match &spec.auth {
            Auth::Token(_) | Auth::Basic { .. } => true,
            Auth::None | Auth::SshKey { .. } => false,
        };
        if sends_secret && spec.url.kind == UrlKind::Http {
            tracing::warn!(
                url = %spec.url.text,
                "credentials will be sent over plain http; use https outside a trusted network"
            );
        }
        let cache_err = |e: &dyn std::fmt::Display| SourceError::Cache {
            dir: cache_dir.display().to_string(),
            message: e.to_string(),
        };
        let repo = if cache_dir.join("HEAD").exists() {
            Repository::open_bare(cache_dir).map_err(|e| cache_err(&e.message()))?
        } else {
            std::fs::create_dir_all(cache_dir).map_err(|e| cache_err(&e))?;
            Repository::init_bare(cache_dir).map_err(|e| cache_err(&e.message()))?
        };
        read_local_objects_in_place(&repo, &spec);
        Ok(Self {
            spec,
            repo,
            fetched: None,
            loaded: None,
            walked: None,
            timeout: None,
        })
    }

    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// The commit the last successful fetch resolved.
    pub fn last_fetched(&self) -> Option<&CommitId> {
        self.fetched.as_ref()
    }

    /// The commit last loaded.
    pub fn last_loaded(&self) -> Option<&CommitId> {
        self.loaded.as_ref().map(|(c, _)| c)
    }

    /// Forget the last load's walk, so the next load reads every directory of its tree (tests
    /// compare the two).
    #[doc(hidden)]
    pub fn forget_walk(&mut self) {
        self.walked = None;
    }

    /// Abort transfers that run longer than this (checked while data flows; the caller's own
    /// timeout covers a server that never answers).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    fn url(&self) -> String {
        self.spec.url.text.clone()
    }

    fn local_ref(&self) -> Option<String> {
        match &self.spec.reference {
            GitRef::Branch(b) => Some(format!("{REF_PREFIX}/heads/{b}")),
            GitRef::Tag(t) => Some(format!("{REF_PREFIX}/tags/{t}")),
            GitRef::Commit(_) => None,
        }
    }

    fn refspecs(&self) -> Vec<String> {
        match &self.spec.reference {
            GitRef::Branch(b) => vec![format!("+refs/heads/{b}:{REF_PREFIX}/heads/{b}")],
            GitRef::Tag(t) => vec![format!("+refs/tags/{t}:{REF_PREFIX}/tags/{t}")],
            // A bare commit id cannot be asked for on every server (it needs
            // uploadpack.allowReachableSHA1InWant), so fetch every branch and tag and look it up.
            GitRef::Commit(_) => vec![
                format!("+refs/heads/*:{REF_PREFIX}/heads/*"),
                format!("+refs/tags/*:{REF_PREFIX}/tags/*"),
            ],
        }
    }

    /// Fetch the followed ref and say whether its commit moved since the previous fetch.
    pub fn fetch(&mut self) -> Result<FetchOutcome, SourceError> {
        let commit = self.fetch_ref()?;
        let outcome = FetchOutcome::classify(self.fetched.as_ref(), commit.clone());
        self.fetched = Some(commit);
        Ok(outcome)
    }

    /// Fetch the followed ref and resolve it, without recording it as seen: a revert fetches
    /// too, and must not make the poller believe it already loaded the tip.
    pub(super) fn fetch_ref(&self) -> Result<CommitId, SourceError> {
        let url = self.url();
        // Forget our copy of the ref first, so a ref deleted on the server is noticed instead
        // of silently serving the old commit.
        if let Some(name) = self.local_ref()
            && let Ok(mut r) = self.repo.find_reference(&name)
        {
            r.delete().map_err(|e| SourceError::Cache {
                dir: self.repo.path().display().to_string(),
                message: e.message().to_string(),
            })?;
        }
        self.drop_dangling_refs()?;
        let transfer = Transfer::new(self.timeout);
        let mut callbacks = self.callbacks(&transfer);
        callbacks.transfer_progress(|_| !transfer.past_deadline());
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .download_tags(AutotagOption::None)
            .prune(FetchPrune::On)
            .update_fetchhead(false);
        let refspecs = self.refspecs();
        let result = self
            .repo
            .remote_anonymous(&url)
            .and_then(|mut remote| remote.fetch(&refspecs, Some(&mut options), None));
        if let Err(e) = result {
            return Err(transfer.error(&url, &e));
        }
        self.resolve()
    }

    /// Delete our refs whose object is not in the object database. A local source is read in
    /// place (see [`read_local_objects_in_place`]), so a cache that then follows another URL
    /// keeps refs to objects it never had, and libgit2's fetch negotiation, which walks every
    /// ref, would fail on them.
    fn drop_dangling_refs(&self) -> Result<(), SourceError> {
        let cache_err = |e: git2::Error| SourceError::Cache {
            dir: self.repo.path().display().to_string(),
            message: e.message().to_string(),
        };
        let odb = self.repo.odb().map_err(cache_err)?;
        let mut dangling = Vec::new();
        for r in self
            .repo
            .references_glob(&format!("{REF_PREFIX}/*"))
            .map_err(cache_err)?
        {
            let r = r.map_err(cache_err)?;
            if r.target().is_some_and(|oid| !odb.exists(oid)) {
                dangling.push(r);
            }
        }
        for mut r in dangling {
            r.delete().map_err(cache_err)?;
        }
        Ok(())
    }

    /// Push `local_ref` of the cache repository to `remote_ref` (never forced), with the
    /// fetch's credentials and host-key check. A refusal is not an error: the caller decides
    /// whether another try can help (see [`PushOutcome`]). libgit2 cannot abort an upload from
    /// a callback, so a stalled push ends on its socket timeouts (see [`IO_TIMEOUT_MS`]), not
    /// on [`GitSource::set_timeout`].
    pub(super) fn push(
        &self,
        local_ref: &str,
        remote_ref: &str,
    ) -> Result<PushOutcome, SourceError> {
        let url = self.url();
        let transfer = Transfer::new(self.timeout);
        let callbacks = self.callbacks(&transfer);
        let refspec = format!("{local_ref}:{remote_ref}");
        let pushed = self
            .repo
            .remote_anonymous(&url)
            .and_then(|mut remote| Self::push_refspec(&mut remote, &refspec, callbacks));
        match pushed {
            Ok(None) => Ok(PushOutcome::Pushed),
            Ok(Some(reason)) if reason.contains(CHECKED_OUT_REFUSAL) => {
                Ok(PushOutcome::NonBare(reason))
            }
            Ok(Some(reason)) => Ok(PushOutcome::Rejected(reason)),
            // libgit2's local transport (a path or file:// URL) pushes only into bare
            // repositories, whichever branch is checked out.
            Err(e) if e.code() == ErrorCode::BareRepo => {
                Ok(PushOutcome::NonBare(e.message().to_string()))
            }
            Err(e) => Err(transfer.error(&url, &e)),
        }
    }

    /// Push `refspec` (never forced) through `remote` with `callbacks` (credentials, host-key
    /// check), for [`GitSource::push`] and `veer demo`'s repository. `Ok(Some(reason))`: the
    /// remote refused the update, in its report on the ref or, for a remote tip we do not
    /// have, in libgit2's not-fast-forward error; `Err` for anything else.
    pub fn push_refspec(
        remote: &mut git2::Remote<'_>,
        refspec: &str,
        callbacks: RemoteCallbacks<'_>,
    ) -> Result<Option<String>, git2::Error> {
        let rejected: RefCell<Option<String>> = RefCell::new(None);
        let mut callbacks = callbacks;
        callbacks.push_update_reference(|_name, status| {
            if let Some(reason) = status {
                *rejected.borrow_mut() = Some(reason.to_string());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        match remote.push(&[refspec], Some(&mut options)) {
            Ok(()) => Ok(rejected.take()),
            Err(e) if e.code() == ErrorCode::NotFastForward => Ok(Some(e.message().to_string())),
            Err(e) => Err(e),
        }
    }

    /// Remote callbacks shared by fetch and push: credentials (each kind tried once) and, for
    /// SSH, the known_hosts check.
    fn callbacks<'a>(&'a self, transfer: &'a Transfer) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        let mut tried: HashSet<u32> = HashSet::new();
        let spec = &self.spec;
        callbacks.credentials(move |_url, user_from_url, allowed| {
            credentials(
                spec,
                user_from_url,
                allowed,
                &mut tried,
                &transfer.secret_error,
            )
        });
        if let Auth::SshKey { known_hosts, .. } = &spec.auth {
            let host_port = ssh_host_port(spec);
            callbacks.certificate_check(move |cert, host| {
                check_host_key(cert, host, host_port.as_ref(), known_hosts)
            });
        }
        callbacks
    }

    /// The bare cache repository, for building commits in it.
    pub(super) fn repo(&self) -> &Repository {
        &self.repo
    }

    fn resolve(&self) -> Result<CommitId, SourceError> {
        let not_found = || SourceError::RefNotFound {
            url: self.url(),
            reference: self.spec.reference.to_string(),
        };
        let oid = match (&self.spec.reference, self.local_ref()) {
            (GitRef::Commit(sha), _) => {
                let oid = Oid::from_str(sha).map_err(|_| not_found())?;
                self.repo.find_commit(oid).map_err(|_| not_found())?.id()
            }
            (GitRef::Branch(_) | GitRef::Tag(_), Some(name)) => self
                .repo
                .find_reference(&name)
                .and_then(|r| r.peel_to_commit())
                .map_err(|_| not_found())?
                .id(),
            (GitRef::Branch(_) | GitRef::Tag(_), None) => return Err(not_found()),
        };
        Ok(CommitId(oid.to_string()))
    }

    /// Read the manifests of `commit` (under the sub-path). Files whose blob was parsed before
    /// come from `cache`; the cache is then pruned to this commit's files.
    pub fn load(
        &mut self,
        commit: &CommitId,
        options: &ReadOptions,
        cache: &mut ParseCache,
    ) -> Result<LoadedRevision, SourceError> {
        let url = self.url();
        let read_err = |what: &str, e: git2::Error| SourceError::Read {
            location: format!("{what} of {url}"),
            message: format!(
                "{}; the cache may be damaged: delete it so veer re-clones",
                e.message()
            ),
        };
        let oid = Oid::from_str(&commit.0).map_err(|e| read_err("commit id", e))?;
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| read_err(&format!("commit {commit}"), e))?;
        let revision = revision_of(commit, &c);
        let root = c
            .tree()
            .map_err(|e| read_err(&format!("tree of commit {commit}"), e))?;
        let view = GitView {
            repo: &self.repo,
            root,
        };
        let base = self.spec.sub_path.clone().unwrap_or_default();
        if !base.is_empty() && view.kind(&base) != Some(Kind::Dir) {
            return Err(SourceError::SubPathMissing {
                url,
                commit: commit.0.clone(),
                path: base,
            });
        }
        // Taken out first: a load that fails leaves none, so the next one walks everything.
        let (walk_memo, rules_diagnostics) = WalkMemo::walk(&view, &base, self.walked.take())?;
        let walked = walk_memo.walked(rules_diagnostics);
        let mut set = ManifestSet {
            manifests: Vec::new(),
            diagnostics: walked.diagnostics,
            ..ManifestSet::default()
        };
        let mut ids: FileIds = Vec::with_capacity(walked.files.len());
        let mut parsed_files = 0;
        // Files whose parse is in the cache now, each under its path with this content id.
        let mut cached = 0;
        let odb = self
            .repo
            .odb()
            .map_err(|e| read_err("object database", e))?;
        for file in walked.files {
            let (path, blob) = (&file.path, file.blob);
            let content_id =
                ContentId::from_slice(blob.as_bytes()).ok_or_else(|| SourceError::Read {
                    location: format!("blob of {} in {url}", file.real()),
                    message: format!("object id {blob} is not 20 bytes"),
                })?;
            ids.push((Arc::clone(path), content_id));
            let parsed = match cache.get(path, content_id) {
                Some(hit) => hit,
                None => {
                    // Only a miss reads the size: a cached blob passed the check when parsed.
                    let (size, _) = odb
                        .read_header(blob)
                        .map_err(|e| read_err(&format!("blob of {}", file.real()), e))?;
                    if let Some(d) = crate::manifest::too_large(path, size as u64, options) {
                        set.diagnostics.push(d);
                        continue;
                    }
                    parsed_files += 1;
                    match self.repo.find_blob(blob) {
                        Ok(b) => cache.parse(path, content_id, b.content(), options),
                        Err(_) => cache.parse(path, content_id, &[], options),
                    }
                }
            };
            cached += 1;
            set.extend(&parsed);
        }
        // What this revision holds stays cached; an oversize file is never in the cache. When
        // the cache holds only this revision's files (a count says so), nothing is pruned.
        if cache.len() != cached {
            cache.retain(|path, id| {
                ids.binary_search_by(|(p, _)| (**p).cmp(path))
                    .is_ok_and(|i| ids.get(i).is_some_and(|(_, i)| *i == id))
            });
        }
        let changed_files = changed(self.loaded.as_ref().map(|(_, m)| &m[..]), &ids);
        self.loaded = Some((commit.clone(), ids));
        self.walked = Some(walk_memo);
        Ok(LoadedRevision {
            revision,
            set,
            changed_files,
            parsed_files,
        })
    }
}

/// A local source (a path or a `file://` URL) is read in place: its object directory becomes an
/// alternate of the cache's object database, in memory only (nothing is written to the cache's
/// `objects/info/alternates`). The fetch then finds every commit it wants already present,
/// copies nothing and only moves our refs. Otherwise libgit2's local transport builds a pack
/// in this process for the fetch, reading every object it sends whole (and, to find deltas,
/// pairs of them): 1.03 GiB RSS for one 1 GiB blob. A path that is not a repository is left to
/// the fetch to report.
fn read_local_objects_in_place(repo: &Repository, spec: &SourceSpec) {
    let path = match spec.url.kind {
        UrlKind::LocalPath => Some(PathBuf::from(&spec.url.text)),
        UrlKind::File => url::Url::parse(&spec.url.text)
            .ok()
            .and_then(|u| u.to_file_path().ok()),
        UrlKind::Git | UrlKind::Http | UrlKind::Https | UrlKind::Ssh | UrlKind::Scp => None,
    };
    let Some(source) = path.and_then(|p| Repository::open(p).ok()) else {
        return;
    };
    let objects = source.commondir().join("objects");
    let added = match (objects.to_str(), repo.odb()) {
        (Some(dir), Ok(odb)) => odb
            .add_disk_alternate(dir)
            .map_err(|e| e.message().to_string()),
        (None, _) => Err("the path is not UTF-8".to_string()),
        (_, Err(e)) => Err(e.message().to_string()),
    };
    if let Err(message) = added {
        // The fetch still works, by copying.
        tracing::debug!(
            objects = %objects.display(),
            "cannot read the local repository's objects in place: {message}"
        );
    }
}
