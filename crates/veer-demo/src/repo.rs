//! The demo's git repository: a bare repository veer tracks (and pushes its revert commits
//! to), and a work clone the demo commits from, as "veer demo", pushing each commit like a
//! person would. Local paths only (libgit2's local transport).

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, RepositoryInitOptions, Signature, build::CheckoutBuilder};

use super::story::Tree;

pub const BRANCH: &str = "main";
const AUTHOR_NAME: &str = "veer demo";
const AUTHOR_EMAIL: &str = "demo@veer.local";

#[derive(Debug, thiserror::Error)]
#[error("demo git repository {path}: cannot {what}: {message}")]
pub struct RepoError {
    pub path: String,
    pub what: String,
    pub message: String,
}

pub struct DemoRepo {
    bare: PathBuf,
    work: Repository,
    work_dir: PathBuf,
}

fn fail(path: &Path, what: &str) -> impl FnOnce(git2::Error) -> RepoError {
    let path = path.display().to_string();
    let what = what.to_string();
    move |e| RepoError {
        path,
        what,
        message: e.message().to_string(),
    }
}

impl DemoRepo {
    /// `dir/repo.git` (bare, branch `main`) and `dir/work` (a clone with `origin` pointing at
    /// it), both empty.
    pub fn create(dir: &Path) -> Result<Self, RepoError> {
        let bare = dir.join("repo.git");
        let work_dir = dir.join("work");
        let mut options = RepositoryInitOptions::new();
        options.initial_head(BRANCH).bare(true);
        Repository::init_opts(&bare, &options).map_err(fail(&bare, "create it"))?;
        let mut options = RepositoryInitOptions::new();
        options.initial_head(BRANCH);
        let work =
            Repository::init_opts(&work_dir, &options).map_err(fail(&work_dir, "create it"))?;
        let url = bare.display().to_string();
        work.remote("origin", &url)
            .map_err(fail(&work_dir, "add the remote `origin`"))?;
        Ok(Self {
            bare,
            work,
            work_dir,
        })
    }

    /// The bare repository veer follows.
    pub fn bare(&self) -> &Path {
        &self.bare
    }

    /// Fetch the branch and move the work clone to its tip (veer may have pushed a revert);
    /// the tip's files.
    pub fn sync_to_tip(&mut self) -> Result<Tree, RepoError> {
        let dir = self.work_dir.clone();
        let mut remote = self
            .work
            .find_remote("origin")
            .map_err(fail(&dir, "find `origin`"))?;
        let refspec = format!("+refs/heads/{BRANCH}:refs/remotes/origin/{BRANCH}");
        remote
            .fetch(&[refspec.as_str()], None, None)
            .map_err(fail(&dir, "fetch from the bare repository"))?;
        let tip = match self
            .work
            .refname_to_id(&format!("refs/remotes/origin/{BRANCH}"))
        {
            Ok(id) => id,
            // Nothing pushed yet.
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Tree::new()),
            Err(e) => return Err(fail(&dir, "read the fetched tip")(e)),
        };
        self.work
            .reference(
                &format!("refs/heads/{BRANCH}"),
                tip,
                true,
                "demo: sync to the tip",
            )
            .map_err(fail(&dir, "move the branch to the tip"))?;
        self.work
            .set_head(&format!("refs/heads/{BRANCH}"))
            .map_err(fail(&dir, "check the branch out"))?;
        self.work
            .checkout_head(Some(CheckoutBuilder::new().force().remove_untracked(true)))
            .map_err(fail(&dir, "check the tip out"))?;
        files_of(&self.work, tip).map_err(fail(&dir, "read the tip's files"))
    }

    /// Write `tree` as the work clone's content, commit it as "veer demo" with `message` and
    /// push it. The new commit's id.
    pub fn commit_and_push(&mut self, tree: &Tree, message: &str) -> Result<String, RepoError> {
        let dir = self.work_dir.clone();
        let io = |what: &str, e: std::io::Error| RepoError {
            path: dir.display().to_string(),
            what: what.to_string(),
            message: e.to_string(),
        };
        for (path, text) in tree {
            let full = dir.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("create a directory", e))?;
            }
            std::fs::write(&full, text).map_err(|e| io(&format!("write {path}"), e))?;
        }
        let mut index = self.work.index().map_err(fail(&dir, "open the index"))?;
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .map_err(fail(&dir, "stage the files"))?;
        index
            .update_all(["*"], None)
            .map_err(fail(&dir, "stage removed files"))?;
        index.write().map_err(fail(&dir, "write the index"))?;
        let tree_id = index.write_tree().map_err(fail(&dir, "write the tree"))?;
        let git_tree = self
            .work
            .find_tree(tree_id)
            .map_err(fail(&dir, "read the tree"))?;
        let author =
            Signature::now(AUTHOR_NAME, AUTHOR_EMAIL).map_err(fail(&dir, "make the author"))?;
        let parent = match self.work.head() {
            Ok(h) => Some(h.peel_to_commit().map_err(fail(&dir, "read HEAD"))?),
            Err(e) if e.code() == git2::ErrorCode::UnbornBranch => None,
            Err(e) => return Err(fail(&dir, "read HEAD")(e)),
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .work
            .commit(Some("HEAD"), &author, &author, message, &git_tree, &parents)
            .map_err(fail(&dir, "commit"))?;
        self.push()?;
        Ok(id.to_string())
    }

    fn push(&self) -> Result<(), RepoError> {
        let dir = &self.work_dir;
        let mut remote = self
            .work
            .find_remote("origin")
            .map_err(fail(dir, "find `origin`"))?;
        let refspec = format!("refs/heads/{BRANCH}:refs/heads/{BRANCH}");
        let rejected = veer_controller::source::GitSource::push_refspec(
            &mut remote,
            &refspec,
            git2::RemoteCallbacks::new(),
        )
        .map_err(fail(dir, "push"))?;
        match rejected {
            None => Ok(()),
            Some(reason) => Err(RepoError {
                path: dir.display().to_string(),
                what: "push".to_string(),
                message: format!("the bare repository refused it: {reason}"),
            }),
        }
    }

    /// `short summary` of the branch's commits in the bare repository, newest first.
    pub fn log(&self) -> Result<Vec<String>, RepoError> {
        let repo = Repository::open_bare(&self.bare).map_err(fail(&self.bare, "open it"))?;
        let mut walk = repo.revwalk().map_err(fail(&self.bare, "walk the log"))?;
        walk.push_ref(&format!("refs/heads/{BRANCH}"))
            .map_err(fail(&self.bare, "walk the log"))?;
        let mut out = Vec::new();
        for id in walk {
            let id = id.map_err(fail(&self.bare, "walk the log"))?;
            out.push(self.describe_in(&repo, id)?);
        }
        Ok(out)
    }

    /// `short summary` of one commit of the bare repository.
    pub fn describe(&self, commit: &str) -> Result<String, RepoError> {
        let repo = Repository::open_bare(&self.bare).map_err(fail(&self.bare, "open it"))?;
        let id = Oid::from_str(commit).map_err(fail(&self.bare, "parse a commit id"))?;
        self.describe_in(&repo, id)
    }

    fn describe_in(&self, repo: &Repository, id: Oid) -> Result<String, RepoError> {
        let commit = repo
            .find_commit(id)
            .map_err(fail(&self.bare, "read a commit"))?;
        let summary = commit.summary().ok().flatten().unwrap_or("").to_string();
        let text = id.to_string();
        Ok(format!("{} {summary}", super::render::short(&text)))
    }
}

/// Every file of a commit: path → content (text; the demo's files are YAML).
fn files_of(repo: &Repository, commit: Oid) -> Result<Tree, git2::Error> {
    let tree = repo.find_commit(commit)?.tree()?;
    let mut out = Tree::new();
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            match repo.find_blob(entry.id()) {
                Ok(blob) => {
                    let name = entry.name().unwrap_or("");
                    out.insert(
                        format!("{root}{name}"),
                        String::from_utf8_lossy(blob.content()).to_string(),
                    );
                }
                Err(e) => {
                    failure = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
        }
        git2::TreeWalkResult::Ok
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_pushed_and_a_pushed_tip_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = DemoRepo::create(dir.path()).unwrap();
        assert!(repo.sync_to_tip().unwrap().is_empty());
        let mut tree = Tree::new();
        tree.insert("a/x.yaml".into(), "x: 1\n".into());
        let first = repo.commit_and_push(&tree, "first").unwrap();
        tree.insert("b.yaml".into(), "y: 2\n".into());
        let second = repo.commit_and_push(&tree, "second").unwrap();
        let log = repo.log().unwrap();
        assert_eq!(
            log,
            vec![
                format!("{} second", veer_controller::ids::short(&second)),
                format!("{} first", veer_controller::ids::short(&first))
            ]
        );
        // Someone else (veer's revert) pushes to the bare repository: the next sync sees it.
        let other = dir.path().join("other");
        let clone = Repository::clone(repo.bare().to_str().unwrap(), &other).unwrap();
        std::fs::write(other.join("b.yaml"), "y: 3\n").unwrap();
        let mut index = clone.index().unwrap();
        index.add_path(Path::new("b.yaml")).unwrap();
        let tree_id = index.write_tree().unwrap();
        let sig = Signature::now("veer", "veer@localhost").unwrap();
        let head = clone.head().unwrap().peel_to_commit().unwrap();
        clone
            .commit(
                Some("HEAD"),
                &sig,
                &sig,
                "by someone else",
                &clone.find_tree(tree_id).unwrap(),
                &[&head],
            )
            .unwrap();
        clone
            .find_remote("origin")
            .unwrap()
            .push(&["refs/heads/main:refs/heads/main"], None)
            .unwrap();
        let tip = repo.sync_to_tip().unwrap();
        assert_eq!(tip.get("b.yaml").map(String::as_str), Some("y: 3\n"));
        assert_eq!(tip.get("a/x.yaml").map(String::as_str), Some("x: 1\n"));
        let third = repo.commit_and_push(&tip, "third, on top").unwrap();
        assert!(repo.log().unwrap()[0].starts_with(veer_controller::ids::short(&third)));
        assert_eq!(repo.log().unwrap().len(), 4);
        assert_eq!(
            repo.describe(&first).unwrap(),
            format!("{} first", veer_controller::ids::short(&first))
        );
    }
}
